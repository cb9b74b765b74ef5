"""Batches whose images share an aspect-ratio group (SGB's GroupedBatchSampler semantics)."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import BatchSampler, Sampler


class GroupedBatchSampler(BatchSampler):
    """Walk ``sampler`` in order and put each index in its group's bucket; a full bucket is a
    batch. Each batch is thus consecutive members of one group in sampling order. Leftover
    incomplete buckets are yielded at the end unless ``drop_uneven``.

    Args:
        sampler: yields dataset indices.
        group_ids: int[len(dataset)], the group of every dataset index.
        batch_size: images per batch.
    """

    def __init__(self, sampler: Sampler[int], group_ids: Sequence[int], batch_size: int,
                 drop_uneven: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sampler = sampler
        self.group_ids = np.asarray(group_ids, dtype=np.int64)
        self.batch_size, self.drop_uneven = batch_size, drop_uneven

    def __iter__(self) -> Iterator[list[int]]:
        buckets: dict[int, list[int]] = {}
        for idx in self.sampler:
            bucket = buckets.setdefault(int(self.group_ids[idx]), [])
            bucket.append(int(idx))
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()
        if not self.drop_uneven:
            for group in sorted(buckets):
                if buckets[group]:
                    yield list(buckets[group])

    def __len__(self) -> int:
        return sum(1 for _ in iter(self))


def aspect_ratio_groups(heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """SGB's grouping: 0 for landscape (height / width < 1), 1 otherwise. -> int64[N]"""
    return (np.asarray(heights, np.float64) / np.asarray(widths, np.float64) >= 1).astype(np.int64)
