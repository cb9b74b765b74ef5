"""``build_transforms(cfg, is_train)``: the INPUT.* keys -> a joint image/target transform."""
from __future__ import annotations

from . import transforms as T


def build_transforms(cfg, is_train: bool = True) -> T.Compose:
    """Resize (INPUT.MIN_SIZE_* / MAX_SIZE_*), horizontal flip (training only, with
    INPUT.HORIZONTAL_FLIP_PROB_TRAIN), to tensor, normalise (INPUT.PIXEL_MEAN / PIXEL_STD,
    INPUT.TO_BGR255)."""
    if is_train:
        min_size, max_size = cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN
        flip_prob = cfg.INPUT.HORIZONTAL_FLIP_PROB_TRAIN
    else:
        min_size, max_size, flip_prob = cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, 0.0
    return T.Compose([
        T.Resize(min_size, max_size),
        T.RandomHorizontalFlip(flip_prob),
        T.ToTensor(),
        T.Normalize(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD, cfg.INPUT.TO_BGR255),
    ])
