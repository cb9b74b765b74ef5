"""comm helpers in a plain process (torch.distributed not initialised)."""
import torch

from maskrcnn_benchmark.utils import comm


def test_single_process_defaults():
    assert comm.get_world_size() == 1 and comm.get_rank() == 0 and comm.is_main_process()
    comm.synchronize()
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    d = {"loss": torch.tensor(2.0)}
    assert comm.reduce_dict(d) is d
