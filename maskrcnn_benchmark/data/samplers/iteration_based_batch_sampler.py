"""Turn an epoch-based batch sampler into ``num_iterations`` batches, resumable exactly."""
from __future__ import annotations

from typing import Iterator

from torch.utils.data import BatchSampler


class IterationBasedBatchSampler(BatchSampler):
    """Yield batches ``start_iter .. num_iterations - 1`` of the endless sequence made of epoch
    0, 1, 2, ... of ``batch_sampler`` (its sampler's ``set_epoch(e)`` is called before epoch e).

    The sequence does not depend on ``start_iter``: a run resumed at iteration k sees exactly the
    batches the uninterrupted run saw from iteration k on (epochs before it are replayed as index
    lists only, no data is loaded).
    """

    def __init__(self, batch_sampler: BatchSampler, num_iterations: int, start_iter: int = 0):
        if start_iter < 0:
            raise ValueError(f"start_iter must be >= 0, got {start_iter}")
        self.batch_sampler = batch_sampler
        self.num_iterations, self.start_iter = num_iterations, start_iter

    def _epoch(self, epoch: int) -> list[list[int]]:
        sampler = getattr(self.batch_sampler, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        batches = list(self.batch_sampler)
        if not batches:
            raise ValueError("the training sampler yields no batch: the dataset split is empty")
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        iteration, epoch = 0, 0
        while iteration < self.num_iterations:
            batches = self._epoch(epoch)
            epoch += 1
            if iteration + len(batches) <= self.start_iter:
                iteration += len(batches)
                continue
            for batch in batches:
                if iteration >= self.num_iterations:
                    return
                if iteration >= self.start_iter:
                    yield batch
                iteration += 1

    def __len__(self) -> int:
        return max(0, self.num_iterations - self.start_iter)
