"""A shuffling sampler that shards a dataset across ranks, deterministic per (seed, epoch)."""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
from torch.utils.data import Sampler


class DistributedSampler(Sampler[int]):
    """Rank ``rank``'s share of a permutation of ``range(size)``.

    The permutation depends only on ``seed`` and the epoch set by :meth:`set_epoch`, so every
    rank draws the same one and a resumed run replays it exactly. Like
    ``torch.utils.data.DistributedSampler`` the permutation is padded (by wrapping around) to a
    multiple of ``num_replicas`` and rank r takes every ``num_replicas``-th index from r.
    """

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.size, self.num_replicas, self.rank = size, num_replicas, rank
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.num_samples = math.ceil(size / num_replicas) if size else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> np.ndarray:
        if self.shuffle:
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch])
            order = rng.permutation(self.size)
        else:
            order = np.arange(self.size)
        total = self.num_samples * self.num_replicas
        if total > self.size:
            order = np.resize(order, total)  # wraps around
        return order[self.rank:total:self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
