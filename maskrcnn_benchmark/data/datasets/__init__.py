from .visual_genome import BOX_SCALE, VGDataset

__all__ = ["BOX_SCALE", "VGDataset"]
