"""The tools' command line: SGB's ``--config-file FILE KEY VALUE ...`` with flags anywhere, and how a
user error ends them."""
import os
import subprocess
import sys

import pytest

from maskrcnn_benchmark.data.errors import DatasetError
from maskrcnn_benchmark.engine.defaults import default_argument_parser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_flags_after_the_overrides_are_flags():
    p = default_argument_parser("t")
    ns = p.parse_args(["--config-file", "a.yaml", "SOLVER.MAX_ITER", "10", "--skip-test",
                       "DATASETS.NUM_IM", "-1", "SOLVER.STEPS", "(3, 4)", "--no-resume"])
    assert ns.config_file == "a.yaml" and ns.skip_test and ns.no_resume
    assert ns.opts == ["SOLVER.MAX_ITER", "10", "DATASETS.NUM_IM", "-1", "SOLVER.STEPS", "(3, 4)"]


def test_plain_form():
    ns = default_argument_parser("t").parse_args(["--config-file", "b.yaml", "OUTPUT_DIR", "out"])
    assert (ns.config_file, ns.skip_test, ns.no_resume, ns.opts) == ("b.yaml", False, False, ["OUTPUT_DIR", "out"])


@pytest.mark.parametrize("tool", ["detector_pretrain_net", "detector_pretest_net", "relation_train_net",
                                  "relation_test_net"])
def test_user_error_is_one_line_and_exit_2(tool, tmp_path):
    """Run as a script, each torchrun tool ends a user error with its message, no traceback."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{tool}.py"), "OUTPUT_DIR", str(tmp_path),
                           "MODEL.NO_SUCH_KEY", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown config key MODEL.NO_SUCH_KEY"), proc.stderr


@pytest.mark.parametrize("argv", [
    ["--config-file", "c.yaml", "--splits", "val", "test", "DATASETS.DATA_DIR", "d", "OUTPUT_DIR", "o"],
    ["--config-file", "c.yaml", "DATASETS.DATA_DIR", "d", "OUTPUT_DIR", "o", "--splits", "val", "test"],
    ["DATASETS.DATA_DIR", "d", "--splits", "val", "test", "OUTPUT_DIR", "o", "--config-file", "c.yaml"],
])
def test_test_tools_take_options_and_overrides_in_any_order(argv):
    from maskrcnn_benchmark.engine.defaults import eval_argument_parser
    ns = eval_argument_parser("t", "w").parse_args(argv)
    assert (ns.config_file, ns.splits, ns.weight) == ("c.yaml", ["val", "test"], "")
    assert ns.opts == ["DATASETS.DATA_DIR", "d", "OUTPUT_DIR", "o"]


@pytest.mark.parametrize("tool", ["detector_pretest_net", "relation_test_net"])
def test_test_tools_parse_splits_before_overrides(tool, load_tool, tmp_path):
    """The tools' own usage line: the run gets past the parser to the (here missing) weights."""
    code = load_tool(tool).main(["--splits", "val", "test", "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu",
                                 "MODEL.RELATION_ON", str(tool == "relation_test_net")])
    assert code == 2  # "no weights" (the parser no longer stops it with "invalid choice")


def test_user_error_raised_in_a_loader_worker_is_its_own_one_line_message():
    """A DataLoader worker's exception is re-raised in the main process by ExceptionWrapper, with
    the worker's traceback in the message: done here in-process, as the loader does."""
    from torch._utils import ExceptionWrapper

    from maskrcnn_benchmark.engine.defaults import user_error_message
    try:
        raise DatasetError("cannot read image /data/vg/1.jpg (broken data stream); re-download it")
    except DatasetError:
        wrapped = ExceptionWrapper(sys.exc_info(), where="in DataLoader worker process 0")
    with pytest.raises(DatasetError) as e:
        wrapped.reraise()
    assert "Original Traceback" in str(e.value) and len(str(e.value).splitlines()) > 3
    assert user_error_message(e.value) == "cannot read image /data/vg/1.jpg (broken data stream); re-download it"
    assert user_error_message(DatasetError("plain")) == "plain"
