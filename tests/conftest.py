"""Fixtures for every test."""
import logging

import pytest


@pytest.fixture(autouse=True)
def _package_logger_propagates():
    """A tool run in-process calls ``setup_logger``, which stops the package logger from
    propagating to the root (where pytest's ``caplog`` listens): undo that for each test, so that
    a test's log assertions do not depend on which tests ran before it."""
    log = logging.getLogger("maskrcnn_benchmark")
    log.propagate = True
    yield
    log.propagate = True
