"""Per-sample random seeds for training, so that a resumed run replays exactly.

The random training transforms (flip, size choice) and SGB's duplicate-relation draw use torch's
generator. Left to the global one, what an image gets would depend on the worker process that
loads it and on where the run was (re)started. :class:`SeededBatchSampler` pairs every index
with a seed that depends only on (SEED, iteration, rank, position in the batch), and
:class:`SeededDataset` loads each sample under its seed, leaving the caller's generator as it was.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset

from .iteration_based_batch_sampler import IterationBasedBatchSampler


def sample_seed(seed: int, iteration: int, rank: int, position: int) -> int:
    """A 63-bit seed that depends only on its four arguments."""
    seq = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(iteration), int(rank), int(position)])
    return int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))


class SeededBatchSampler(BatchSampler):
    """``[(index, seed), ...]`` batches of an iteration-based batch sampler; the seeds of the
    batch of iteration ``it`` are ``sample_seed(seed, it, rank, j)``."""

    def __init__(self, batch_sampler: IterationBasedBatchSampler, seed: int, rank: int = 0):
        self.batch_sampler, self.seed, self.rank = batch_sampler, seed, rank

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for it, batch in enumerate(self.batch_sampler, start=self.batch_sampler.start_iter):
            yield [(int(idx), sample_seed(self.seed, it, self.rank, j)) for j, idx in enumerate(batch)]

    def __len__(self) -> int:
        return len(self.batch_sampler)


class SeededDataset(Dataset):
    """``ds[(index, seed)]`` = ``dataset[index]`` computed with torch's CPU generator seeded with
    ``seed`` (and restored afterwards). Other attributes are the wrapped dataset's."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        state = torch.get_rng_state()
        try:
            torch.default_generator.manual_seed(seed)  # CPU only: CUDA streams are left alone
            return self.dataset[index]
        finally:
            torch.set_rng_state(state)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)
