"""The one exception type of the data layer."""


class DatasetError(RuntimeError):
    """A dataset file is missing, incomplete or inconsistent.

    The message names the file and says how to fix it; it is raised instead of a bare assertion
    so that a wrong data path or a broken download is diagnosed in one line.
    """
