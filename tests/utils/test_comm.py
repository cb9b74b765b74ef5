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


RANK_ZERO_WORK = textwrap.dedent("""
    import pickle
    from maskrcnn_benchmark.config import ConfigError
    from maskrcnn_benchmark.utils import comm

    class Odd(Exception):  # pickles, but does not unpickle (two arguments)
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")

    comm.init_distributed("cpu", timeout_minutes=2)
    rank = comm.get_rank()
    print("gathered", [g["rank"] for g in comm.gather({"rank": rank, "rows": [rank] * 3})])
    print("result", comm.on_main_process(lambda: {"mR@50": 0.25 + rank}))
    for error in (ConfigError("cannot write results.json: disk full"), Odd("x", "y")):
        def fail(error=error):
            raise error
        try:
            comm.on_main_process(fail)
        except Exception as e:
            print("raised", type(e).__name__, e)
    comm.exit_process(0)
""")


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rank_0_gathers_alone_and_its_errors_reach_every_rank():
    """Predictions are gathered on rank 0 only; a failure of rank-0 work (evaluation, writing the
    results) ends every rank with its message instead of leaving them blocked."""
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    procs = [subprocess.Popen([sys.executable, "-c", RANK_ZERO_WORK], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, err
        outs.append(out.splitlines())
    assert outs[0][0] == "gathered [0, 1]" and outs[1][0] == "gathered []"
    assert outs[0][1] == outs[1][1] == "result {'mR@50': 0.25}"
    for lines in outs:
        assert "raised ConfigError cannot write results.json: disk full" in lines
    assert "raised Odd x/y" in outs[0] and "raised MainProcessError rank 0 failed: Odd: x/y" in outs[1]


def test_process_group_timeout_comes_from_the_config(monkeypatch):
    import datetime

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    monkeypatch.setattr(comm.dist, "init_process_group", lambda **kw: seen.update(kw))
    monkeypatch.setattr(comm.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(comm.atexit, "register", lambda *a: None)
    monkeypatch.setattr(comm, "get_rank", lambda: 0)
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm.dist, "get_backend", lambda: "gloo")
    assert comm.init_distributed("cpu", timeout_minutes=45)
    assert seen["backend"] == "gloo" and seen["timeout"] == datetime.timedelta(minutes=45)
