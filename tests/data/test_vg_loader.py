"""Loaders: batch shapes and padding, aspect grouping, exact resume, sharding, config wiring."""
import numpy as np
import pytest
import torch

from maskrcnn_benchmark.config import ConfigError, load_config
from maskrcnn_benchmark.data import DatasetError, build_dataset, make_data_loader
from maskrcnn_benchmark.data.build import _per_rank, make_batch_sampler
from maskrcnn_benchmark.data.collate_batch import to_image_list
from maskrcnn_benchmark.data.samplers import (DistributedSampler, GroupedBatchSampler,
                                              aspect_ratio_groups)


def make_cfg(data_dir, tmp_path, *extra):
    return load_config(None, [
        "DATASETS.DATA_DIR", data_dir, "DATASETS.TRAIN", "('synthvg_train',)",
        "DATASETS.VAL", "('synthvg_val',)", "DATASETS.TEST", "('synthvg_test',)",
        "DATASETS.NUM_VAL_IM", "8", "INPUT.MIN_SIZE_TRAIN", "(96,)",
        "INPUT.MAX_SIZE_TRAIN", "128", "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
        "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "30", "TEST.IMS_PER_BATCH", "4",
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.SIZE_DIVISIBILITY", "32",
        "OUTPUT_DIR", str(tmp_path), *extra])


def test_train_batches_padded_and_grouped(synthvg_dir, tmp_path):
    cfg = make_cfg(synthvg_dir[0], tmp_path)
    loader = make_data_loader(cfg, "train", is_train=True)
    ds = loader.dataset
    groups = aspect_ratio_groups(*ds.image_sizes())
    assert len(loader) == 30
    for n, (images, targets, indices) in enumerate(loader):
        if n == 6:
            break
        b, c, h, w = images.tensors.shape
        assert c == 3 and 1 <= b <= 4 and h % 32 == 0 and w % 32 == 0
        assert len(targets) == len(indices) == len(images.image_sizes) == b
        assert isinstance(indices, tuple) and len(set(groups[list(indices)])) == 1
        for k, ((ih, iw), t) in enumerate(zip(images.image_sizes, targets)):
            assert t["image_size"] == (ih, iw) and ih <= h and iw <= w
            assert images.tensors[k, :, ih:].abs().sum() == 0
            assert images.tensors[k, :, :, iw:].abs().sum() == 0
            assert (t["boxes"][:, 2:] <= torch.tensor([iw, ih]) + 1e-3).all()
            assert (t["boxes"] >= 0).all() and len(t["labels"]) == len(t["boxes"])


def test_resume_replays_the_same_batches(synthvg_dir, tmp_path):
    cfg = make_cfg(synthvg_dir[0], tmp_path)
    full = list(make_data_loader(cfg, "train", True).batch_sampler)
    assert len(full) == 30
    n = len(make_data_loader(cfg, "train", True).dataset)
    assert -(-n // 4) + 1 < 13  # an epoch has at most that many batches: k = 13 is epoch 2
    for k in (1, 7, 13, 29, 30):
        assert list(make_data_loader(cfg, "train", True, start_iter=k).batch_sampler) == full[k:]
    resumed = make_data_loader(cfg, "train", True, start_iter=13)
    assert [list(ix) for _, _, ix in list(resumed)[:2]] == [[i for i, _ in b] for b in full[13:15]]
    other_seed = make_cfg(synthvg_dir[0], tmp_path, "SEED", "1")
    assert list(make_data_loader(other_seed, "train", True).batch_sampler) != full


def test_shards_cover_the_dataset_once():
    for size in (10, 11):
        shards = [DistributedSampler(size, 2, r, seed=5).indices() for r in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == (6 if size == 11 else 5)
        assert sorted(set(shards[0]) | set(shards[1])) == list(range(size))
        if size == 10:
            assert not set(shards[0]) & set(shards[1])
    a, b = DistributedSampler(10, 1, 0, seed=5), DistributedSampler(10, 1, 0, seed=5)
    b.set_epoch(1)
    assert a.indices().tolist() != b.indices().tolist()


def test_test_loader_sequential_and_sharded(synthvg_dir, tmp_path):
    cfg = make_cfg(synthvg_dir[0], tmp_path)
    loader = make_data_loader(cfg, "test", is_train=False)
    ds = loader.dataset
    order = [i for _, _, ix in loader for i in ix]
    assert order == list(range(len(ds)))
    blocks = [[i for b in make_batch_sampler(ds, False, 3, world_size=2, rank=r) for i in b]
              for r in (0, 1)]
    assert blocks[0] + blocks[1] == list(range(len(ds)))
    assert abs(len(blocks[0]) - len(blocks[1])) <= 1


def test_workers_give_the_same_batches(synthvg_dir, tmp_path):
    a = next(iter(make_data_loader(make_cfg(synthvg_dir[0], tmp_path), "test", False)))
    b = next(iter(make_data_loader(make_cfg(synthvg_dir[0], tmp_path,
                                            "DATALOADER.NUM_WORKERS", "1"), "test", False)))
    assert torch.equal(a[0].tensors, b[0].tensors) and a[2] == b[2]
    assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(a[1], b[1]))


def test_grouped_batch_sampler():
    batches = list(GroupedBatchSampler(range(7), [0, 1, 0, 1, 0, 0, 1], 2))
    assert batches == [[0, 2], [1, 3], [4, 5], [6]]
    assert list(GroupedBatchSampler(range(7), [0, 1, 0, 1, 0, 0, 1], 2, drop_uneven=True)) == \
        [[0, 2], [1, 3], [4, 5]]
    assert aspect_ratio_groups(np.array([10, 20, 20]), np.array([20, 10, 20])).tolist() == \
        [0, 1, 1]


def test_collate_pads_to_size_divisibility():
    images = [torch.ones(3, 50, 70), torch.ones(3, 64, 40)]
    il = to_image_list(images, 32)
    assert il.tensors.shape == (2, 3, 64, 96) and il.image_sizes == [(50, 70), (64, 40)]
    assert il.tensors[0, :, :50, :70].min() == 1 and il.tensors[0].sum() == 3 * 50 * 70
    assert to_image_list(images, 0).tensors.shape == (2, 3, 64, 70)


def test_batch_size_must_divide_by_world_size():
    with pytest.raises(ConfigError, match=r"SOLVER.IMS_PER_BATCH \(6\) .* multiple of 4 \(e.g. SOLVER.IMS_PER_BATCH 8\)"):
        _per_rank(6, "SOLVER.IMS_PER_BATCH", 4)
    with pytest.raises(ConfigError, match="TEST.IMS_PER_BATCH"):
        _per_rank(0, "TEST.IMS_PER_BATCH", 4, even=False)
    assert _per_rank(8, "SOLVER.IMS_PER_BATCH", 4) == 2


@pytest.mark.parametrize("world", [3, 5, 6, 7])
def test_test_batches_split_unevenly_and_cover_the_split_once(world):
    """TEST.IMS_PER_BATCH 8 on 3, 5, 6 or 7 GPUs: each rank its block, every image once."""
    per_rank = _per_rank(8, "TEST.IMS_PER_BATCH", world, even=False)
    assert per_rank == -(-8 // world)
    seen = []
    for rank in range(world):
        batches = list(make_batch_sampler(range(23), False, per_rank, world_size=world, rank=rank))
        assert all(1 <= len(b) <= per_rank for b in batches)
        seen += [i for b in batches for i in b]
    assert seen == list(range(23))


def test_build_dataset_config_wiring(synthvg_dir, tmp_path):
    data_dir = synthvg_dir[0]
    sgdet = ["MODEL.RELATION_ON", "True", "MODEL.ROI_RELATION_HEAD.USE_GT_BOX", "False",
             "MODEL.ROI_RELATION_HEAD.REQUIRE_BOX_OVERLAP", "True"]
    assert build_dataset(make_cfg(data_dir, tmp_path, *sgdet), "train").filter_non_overlap
    assert not build_dataset(make_cfg(data_dir, tmp_path, *sgdet), "test").filter_non_overlap
    assert not build_dataset(make_cfg(data_dir, tmp_path, *sgdet[:2]), "train").filter_non_overlap
    val = build_dataset(make_cfg(data_dir, tmp_path), "val")
    assert val.split == "val" and len(val) == 8 and not val.filter_duplicate_rels
    with pytest.raises(DatasetError, match="DATASETS.TEST: dataset 'nope_test': folder .*nope not found"):
        build_dataset(make_cfg(data_dir, tmp_path, "DATASETS.TEST", "('nope_test',)"), "test")
    with pytest.raises(DatasetError, match="exactly one"):
        build_dataset(make_cfg(data_dir, tmp_path, "DATASETS.TEST",
                               "('synthvg_test', 'synthvg_val')"), "test")
    with pytest.raises(DatasetError, match="not found"):
        build_dataset(make_cfg(str(tmp_path), tmp_path), "test")


def _two_item_batch():
    from maskrcnn_benchmark.data.collate_batch import BatchCollator
    return BatchCollator(32)([(torch.ones(3, 50, 70), {"boxes": torch.zeros(2, 4)}, 0),
                              (torch.ones(3, 64, 40), {"boxes": torch.zeros(1, 4)}, 1)])


def test_the_data_loader_pins_the_image_batch_and_copies_do_not_block(monkeypatch):
    """pin_memory=True pinned the targets but not the ImageList; the copies to the GPU blocked."""
    from torch.utils.data._utils.pin_memory import pin_memory
    from torchvision.models.detection.image_list import ImageList

    from maskrcnn_benchmark.engine.trainer import move_to_device

    pinned, moved = [], []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a: pinned.append(tuple(self.shape)) or self)
    images, targets, indices = pin_memory(_two_item_batch())
    assert sorted(pinned) == [(1, 4), (2, 3, 64, 96), (2, 4)]
    assert isinstance(images, ImageList) and images.image_sizes == [(50, 70), (64, 40)]
    original_to = torch.Tensor.to

    def to(self, *a, **kw):
        moved.append((tuple(self.shape), kw.get("non_blocking", False)))
        return original_to(self, *a, **kw)
    monkeypatch.setattr(torch.Tensor, "to", to)
    out_images, out_targets = move_to_device((images, targets), torch.device("cpu"))
    assert isinstance(out_images, ImageList) and torch.equal(out_images.tensors, images.tensors)
    assert sorted(moved) == [((1, 4), True), ((2, 3, 64, 96), True), ((2, 4), True)]


def test_val_and_test_workers_persist_across_validations(synthvg_dir, tmp_path):
    cfg = make_cfg(synthvg_dir[0], tmp_path, "DATALOADER.NUM_WORKERS", "1")
    assert make_data_loader(cfg, "val", is_train=False).persistent_workers
    assert not make_data_loader(cfg, "train", is_train=True).persistent_workers
    assert not make_data_loader(make_cfg(synthvg_dir[0], tmp_path), "val", is_train=False).persistent_workers
