from .distributed import DistributedSampler
from .grouped_batch_sampler import GroupedBatchSampler, aspect_ratio_groups
from .iteration_based_batch_sampler import IterationBasedBatchSampler
from .seeded import SeededBatchSampler, SeededDataset, sample_seed

__all__ = ["DistributedSampler", "GroupedBatchSampler", "IterationBasedBatchSampler",
           "SeededBatchSampler", "SeededDataset", "aspect_ratio_groups", "sample_seed"]
