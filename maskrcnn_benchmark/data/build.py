"""``build_dataset`` and ``make_data_loader``: config -> VGDataset -> batches (SGB's roles)."""
from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from ..config.loader import ConfigError
from ..config.paths_catalog import DatasetCatalog
from ..utils.comm import get_rank, get_world_size
from .collate_batch import BatchCollator
from .datasets.visual_genome import VGDataset
from .errors import DatasetError
from .samplers import (DistributedSampler, GroupedBatchSampler, IterationBasedBatchSampler,
                       SeededBatchSampler, SeededDataset, aspect_ratio_groups)
from .transforms import build_transforms

_SPLIT_KEYS = {"train": "TRAIN", "val": "VAL", "test": "TEST"}


def dataset_args(cfg, split: str) -> tuple[str, dict]:
    """The one dataset named by DATASETS.<SPLIT> -> (name, DatasetCatalog entry)."""
    if split not in _SPLIT_KEYS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_KEYS)}, got {split!r}")
    key = f"DATASETS.{_SPLIT_KEYS[split]}"
    names = list(cfg.DATASETS[_SPLIT_KEYS[split]])
    if len(names) != 1:
        raise DatasetError(f"{key} must name exactly one dataset, got {names}")
    try:
        args = DatasetCatalog.get(names[0], cfg.DATASETS.DATA_DIR)
    except KeyError as e:
        raise DatasetError(f"{key}: {e.args[0]}") from e
    root = os.path.dirname(args["dict_file"])
    if not os.path.isdir(root):
        raise DatasetError(f"{key}: dataset {names[0]!r}: folder {root} not found (DATASETS.DATA_DIR/"
                           "<name>/ of a <name>_train|val|test dataset): put SGB's VG150 files in "
                           "datasets/vg (datasets/vg/README.md), run `make data` for SynthVG, or "
                           "tools/convert_to_vg150.py for a dataset of your own")
    return names[0], args


def is_sgdet(cfg) -> bool:
    return bool(cfg.MODEL.RELATION_ON and not cfg.MODEL.ROI_RELATION_HEAD.USE_GT_BOX)


def build_dataset(cfg, split: str, is_train: bool | None = None) -> VGDataset:
    """The dataset named by DATASETS.TRAIN / VAL / TEST (``split``) under DATASETS.DATA_DIR, with
    training transforms when ``is_train`` (default: ``split == "train"``). filter_non_overlap is
    on only for SGDet training with MODEL.ROI_RELATION_HEAD.REQUIRE_BOX_OVERLAP (as SGB)."""
    _, args = dataset_args(cfg, split)
    if is_train is None:
        is_train = split == "train"
    return VGDataset(
        split=args["split"], img_dir=args["img_dir"], roidb_file=args["roidb_file"],
        dict_file=args["dict_file"], image_file=args["image_file"],
        transforms=build_transforms(cfg, is_train),
        filter_empty_rels=cfg.DATASETS.FILTER_EMPTY_RELS, num_im=cfg.DATASETS.NUM_IM,
        num_val_im=cfg.DATASETS.NUM_VAL_IM,
        filter_duplicate_rels=cfg.DATASETS.FILTER_DUPLICATE_RELS,
        filter_non_overlap=is_sgdet(cfg) and cfg.MODEL.ROI_RELATION_HEAD.REQUIRE_BOX_OVERLAP,
        train_fraction=cfg.DATASETS.TRAIN_FRACTION)


def _per_rank(total: int, key: str, world: int, even: bool = True) -> int:
    """Images per rank of a global batch of ``total``. Training (``even``) needs equal shares (a
    ConfigError, one line at start-up, otherwise); test batches may differ (ceil: each rank
    evaluates its own contiguous block of the split, however long)."""
    if total >= 1 and not even:
        return -(-total // world)
    if total < 1 or total % world:
        fit = max(1, -(-total // world)) * world
        raise ConfigError(f"{key} ({total}) is the global batch, split evenly across the {world} processes: "
                          f"it must be a positive multiple of {world} (e.g. {key} {fit})")
    return total // world


def make_batch_sampler(dataset: VGDataset, is_train: bool, images_per_rank: int, *,
                       num_iterations: int = 0, start_iter: int = 0, seed: int = 0,
                       aspect_grouping: bool = True, world_size: int = 1, rank: int = 0
                       ) -> BatchSampler:
    """Training: shuffled shard of this rank, aspect-ratio grouped, ``num_iterations`` batches
    from ``start_iter``. Test: this rank's contiguous block of indices, in order."""
    if is_train:
        sampler = DistributedSampler(len(dataset), world_size, rank, shuffle=True, seed=seed)
        if aspect_grouping:
            groups = aspect_ratio_groups(*dataset.image_sizes())
            batches = GroupedBatchSampler(sampler, groups, images_per_rank)
        else:
            batches = BatchSampler(sampler, images_per_rank, drop_last=False)
        return IterationBasedBatchSampler(batches, num_iterations, start_iter)
    block = np.array_split(np.arange(len(dataset)), world_size)[rank].tolist()
    return BatchSampler(block, images_per_rank, drop_last=False)


def make_data_loader(cfg, split: str = "train", is_train: bool = True,
                     start_iter: int = 0) -> DataLoader:
    """Batches ``(ImageList, list[target dict], tuple[dataset index])``.

    Training: SOLVER.MAX_ITER batches in all (the loader resumes at ``start_iter``) of
    SOLVER.IMS_PER_BATCH / world-size images per rank. Test: TEST.IMS_PER_BATCH / world-size
    images, each rank a contiguous block of the split. Images are padded to
    DATALOADER.SIZE_DIVISIBILITY; DATALOADER.NUM_WORKERS worker processes (0: in-process).
    Training samples are drawn with their own seeds (SeededBatchSampler), and the loader never
    touches the global random generators, so a run resumed at ``start_iter`` gets exactly the
    data (and model randomness) of an uninterrupted one, whatever NUM_WORKERS.
    """
    world, rank = get_world_size(), get_rank()
    dataset = build_dataset(cfg, split, is_train)
    if len(dataset) == 0:
        raise DatasetError(f"split {split!r} of {dataset.roidb_file} has no image left after "
                           "filtering (check DATASETS.NUM_IM / NUM_VAL_IM and the filters)")
    if is_train:
        per_rank = _per_rank(cfg.SOLVER.IMS_PER_BATCH, "SOLVER.IMS_PER_BATCH", world)
    else:
        per_rank = _per_rank(cfg.TEST.IMS_PER_BATCH, "TEST.IMS_PER_BATCH", world, even=False)
    batch_sampler = make_batch_sampler(
        dataset, is_train, per_rank, num_iterations=cfg.SOLVER.MAX_ITER, start_iter=start_iter,
        seed=cfg.SEED, aspect_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        world_size=world, rank=rank)
    if is_train:
        batch_sampler = SeededBatchSampler(batch_sampler, cfg.SEED, rank)
        dataset = SeededDataset(dataset)
    workers = cfg.DATALOADER.NUM_WORKERS
    # own generator: iter(loader) draws the workers' base seed from it, not from torch's global one
    generator = torch.Generator().manual_seed(int(cfg.SEED) + rank)
    return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers,
                      collate_fn=BatchCollator(cfg.DATALOADER.SIZE_DIVISIBILITY),
                      pin_memory=torch.cuda.is_available(),
                      persistent_workers=workers > 0 and not is_train,  # val: not re-forked at each validation
                      generator=generator)
