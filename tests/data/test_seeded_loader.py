"""Training samples are seeded per (SEED, iteration, rank, position): a resumed loader yields the
very tensors an uninterrupted one does, whatever NUM_WORKERS, without touching the global RNG."""
import itertools

import pytest
import torch

import maskrcnn_benchmark.data.build as build

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.data.samplers import sample_seed


def cfg_for(data_dir, tmp_path, workers):
    return load_config(None, [
        "DATASETS.DATA_DIR", data_dir, "DATASETS.TRAIN", "('synthvg_train',)", "DATASETS.NUM_VAL_IM", "8",
        "INPUT.MIN_SIZE_TRAIN", "(64, 96)", "INPUT.MAX_SIZE_TRAIN", "128",
        "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", "0.5", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "8",
        "DATALOADER.NUM_WORKERS", str(workers), "OUTPUT_DIR", str(tmp_path)])


def batches(loader, n):
    return [(images.tensors, [t["boxes"] for t in targets], idx)
            for images, targets, idx in itertools.islice(loader, n)]


def test_resumed_loader_yields_identical_samples(synthvg_dir, tmp_path):
    data_dir = synthvg_dir[0]
    straight = batches(make_data_loader(cfg_for(data_dir, tmp_path, 0), "train", True), 8)
    state = torch.get_rng_state()
    resumed = batches(make_data_loader(cfg_for(data_dir, tmp_path, 2), "train", True, start_iter=5), 3)
    assert torch.equal(torch.get_rng_state(), state)  # the loader left the global generator alone
    sizes = {tuple(t.shape[-2:]) for t, _, _ in straight}
    assert len(sizes) > 1  # the random size choice is exercised
    for (ta, ba, ia), (tb, bb, ib) in zip(straight[5:], resumed):
        assert ia == ib and torch.equal(ta, tb)
        assert all(torch.equal(x, y) for x, y in zip(ba, bb))


def test_sample_seeds_depend_on_every_coordinate():
    base = sample_seed(0, 5, 0, 1)
    assert base == sample_seed(0, 5, 0, 1) and 0 <= base < 2 ** 63
    assert len({base, sample_seed(1, 5, 0, 1), sample_seed(0, 6, 0, 1), sample_seed(0, 5, 1, 1),
                sample_seed(0, 5, 0, 0)}) == 5


def test_global_batch_is_split_across_processes(synthvg_dir, tmp_path, monkeypatch):
    """SOLVER.IMS_PER_BATCH is the global batch: under a world of 2 each rank loads half of it, from
    its own shard of the data, with its own sample seeds."""
    monkeypatch.setattr(build, "get_world_size", lambda: 2)
    cfg = cfg_for(synthvg_dir[0], tmp_path, 0)
    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(build, "get_rank", lambda r=rank: r)
        loader = make_data_loader(cfg, "train", True)
        first = next(iter(loader.batch_sampler))
        assert len(first) == 1 and first[0][1] == sample_seed(cfg.SEED, 0, rank, 0)
        shards.append(set(loader.batch_sampler.batch_sampler.batch_sampler.sampler))  # DistributedSampler
    assert not shards[0] & shards[1]
    odd = cfg_for(synthvg_dir[0], tmp_path, 0).clone()
    odd.defrost()
    odd.SOLVER.IMS_PER_BATCH = 3
    with pytest.raises(ValueError, match=r"SOLVER.IMS_PER_BATCH \(3\) is the global batch, split evenly across "
                                         r"the 2 processes: .* \(e.g. SOLVER.IMS_PER_BATCH 4\)"):
        make_data_loader(odd, "train", True)
