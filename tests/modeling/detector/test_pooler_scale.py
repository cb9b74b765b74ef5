"""The box pooler's scale comes from the config, not from the first batch the model sees."""
import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.config import ConfigError, load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.roi_heads.box_head.box_head import fixed_scale_roi_align


def _fc7(model, images, boxes):
    with torch.no_grad():
        return model.roi_heads.box_features(model.features(images), boxes, images.image_sizes)


def test_pooled_features_do_not_depend_on_the_first_batch(tiny_cfg):
    torch.manual_seed(0)
    a = build_detection_model(tiny_cfg, load_pretrained=False).eval()
    b = build_detection_model(tiny_cfg, load_pretrained=False).eval()
    b.load_state_dict(a.state_dict())
    g = torch.Generator().manual_seed(1)
    short = ImageList(torch.randn(1, 3, 64, 64, generator=g), [(40, 64)])  # 4 feature rows for 40: ~1/10
    square = ImageList(torch.randn(1, 3, 64, 64, generator=g), [(64, 64)])
    boxes = [torch.tensor([[4.0, 6.0, 30.0, 50.0], [20.0, 10.0, 60.0, 40.0]])]
    _fc7(a, short, boxes)  # torchvision alone infers 1/8 from this batch
    assert a.roi_heads.box_roi_pool.scales == [0.0625]
    torch.testing.assert_close(_fc7(a, square, boxes), _fc7(b, square, boxes), rtol=0, atol=0)


def test_pooler_scale_must_be_a_power_of_two():
    assert fixed_scale_roi_align(0.125, 7, 2).scales == [0.125]
    with pytest.raises(ConfigError, match="power of 2"):
        fixed_scale_roi_align(0.1, 7, 2)
    cfg = load_config(None, ["MODEL.ROI_BOX_HEAD.POOLER_SCALES", "(0.1,)", "MODEL.BACKBONE.WIDTH_DIVISOR", 16])
    with pytest.raises(ConfigError, match="POOLER_SCALES"):
        build_detection_model(cfg, load_pretrained=False)
