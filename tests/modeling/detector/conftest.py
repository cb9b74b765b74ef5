import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.config import load_config

TINY = ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.WIDTH_DIVISOR", 16, "MODEL.BACKBONE.BATCH_NORM", True,
        "MODEL.BACKBONE.FREEZE_CONV_BODY_AT", 0, "MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM", 32,
        "MODEL.ROI_BOX_HEAD.NUM_CLASSES", 5, "MODEL.RPN.ANCHOR_SIZES", (16, 32),
        "MODEL.RPN.PRE_NMS_TOP_N_TRAIN", 300, "MODEL.RPN.POST_NMS_TOP_N_TRAIN", 100,
        "MODEL.RPN.PRE_NMS_TOP_N_TEST", 300, "MODEL.RPN.POST_NMS_TOP_N_TEST", 100,
        "MODEL.RPN.BATCH_SIZE_PER_IMAGE", 64, "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 64]


@pytest.fixture
def tiny_cfg():
    return load_config(None, TINY)


@pytest.fixture
def batch():
    """Two images (the second smaller than the padded batch, and without objects)."""
    g = torch.Generator().manual_seed(0)
    images = ImageList(torch.randn(2, 3, 64, 96, generator=g), [(64, 96), (48, 80)])
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0], [30.0, 10.0, 90.0, 60.0]]),
                "labels": torch.tensor([1, 3])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    return images, targets
