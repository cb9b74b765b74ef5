"""Fixtures of the engine tests: a tiny generated SynthVG set and its config overrides
(tiny_synthvg.py, also imported by the torchrun worker script)."""
import importlib.util
import os

import pytest

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
