"""Fixtures of the engine tests: a tiny generated SynthVG set and its config overrides
(tiny_synthvg.py, also imported by the torchrun worker script)."""
import contextlib
import importlib.util
import logging
import os

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "tiny_synthvg", os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_synthvg.py"))
tiny_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_module)


@pytest.fixture(scope="session")
def tiny():
    """The tiny_synthvg module: ``detector_opts(data_dir, output_dir)``, ``relation_opts(...)``."""
    return tiny_module


@pytest.fixture(scope="session")
def tiny_synthvg(tmp_path_factory):
    """DATASETS.DATA_DIR of a 16 + 4 image SynthVG set of 64 px images."""
    return tiny_module.make_tiny_synthvg(str(tmp_path_factory.mktemp("tiny_data")))


@pytest.fixture(scope="session")
def load_tool():
    """``load_tool("detector_pretrain_net")`` -> the module tools/<name>.py (its ``main(argv)``)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def load(name):
        spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(root, "tools", f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture(scope="session")
def in_process_tool_runs():
    """A context manager for tool ``main()`` calls made in this process: one torch thread, as the
    study pools give each run, and afterwards the thread count and the ``maskrcnn_benchmark`` logger
    as they were (the tools' setup_logger adds file handlers and stops propagation)."""
    @contextlib.contextmanager
    def isolated():
        threads = torch.get_num_threads()
        log = logging.getLogger("maskrcnn_benchmark")
        propagate, level, handlers = log.propagate, log.level, list(log.handlers)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            for h in [h for h in log.handlers if h not in handlers]:
                log.removeHandler(h)
                h.close()
            log.propagate, log.level = propagate, level
    return isolated
