"""Training samples are seeded per (SEED, iteration, rank, position): a resumed loader yields the
very tensors an uninterrupted one does, whatever NUM_WORKERS, without touching the global RNG."""
import itertools

import torch

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
