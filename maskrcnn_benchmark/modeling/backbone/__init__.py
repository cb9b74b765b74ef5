from .backbone import build_backbone
from .vgg import VGG16, load_imagenet_weights

__all__ = ["build_backbone", "VGG16", "load_imagenet_weights"]
