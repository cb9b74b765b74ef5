from .distributed import DistributedSampler
from .grouped_batch_sampler import GroupedBatchSampler, aspect_ratio_groups
from .iteration_based_batch_sampler import IterationBasedBatchSampler

__all__ = ["DistributedSampler", "GroupedBatchSampler", "IterationBasedBatchSampler",
           "aspect_ratio_groups"]
