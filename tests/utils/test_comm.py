"""comm helpers in a plain process (torch.distributed not initialised), and how a process in a
process group ends."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from maskrcnn_benchmark.utils import comm


def test_single_process_defaults():
    assert comm.get_world_size() == 1 and comm.get_rank() == 0 and comm.is_main_process()
    comm.synchronize()
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    d = {"loss": torch.tensor(2.0)}
    assert comm.reduce_dict(d) is d


EXITING = textwrap.dedent("""
    import atexit, logging, sys
    import torch.distributed as dist
    from maskrcnn_benchmark.utils import comm
    if sys.argv[1] == "group":
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        comm.all_gather({"a": 1})
    atexit.register(print, "exit handler ran")
    logging.basicConfig(filename=sys.argv[2], level=logging.INFO)
    logging.info("logged line")  # in the file handler's buffer until logging.shutdown
    print("buffered line", end=" ")  # stdout is a pipe: block-buffered, not yet written
    comm.exit_process(3)
    print("not reached")
""")


@pytest.mark.parametrize("mode", ["group", "plain"])
def test_exit_process_keeps_code_output_and_exit_handlers(mode, tmp_path):
    """In a process group the process ends with os._exit: the exit status, buffered output and the
    exit handlers must survive that as they do a normal exit."""
    log = tmp_path / "log.txt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", EXITING, mode, str(log)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.split() == ["buffered", "line", "exit", "handler", "ran"]
    assert "logged line" in log.read_text()
