"""Data layer: VG150 in SGB's file format, transforms, samplers, loaders, statistics."""
from .build import build_dataset, make_data_loader
from .datasets.visual_genome import VGDataset
from .errors import DatasetError
from .statistics import get_dataset_statistics

__all__ = ["build_dataset", "make_data_loader", "get_dataset_statistics", "DatasetError",
           "VGDataset"]
