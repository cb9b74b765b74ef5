"""The VGG-16 conv body: torchvision's layout, stride 16, ImageNet weight loading, freezing."""
import logging

import pytest
import torch
from torchvision.models import vgg16
from torchvision.models.vgg import cfgs, make_layers

from maskrcnn_benchmark.modeling.backbone import VGG16, load_imagenet_weights


def test_layout_and_stride_match_torchvision():
    body = VGG16()
    with torch.device("meta"):  # shapes only
        tv = vgg16()
    assert len(body.features) == len(tv.features) - 1  # the last max-pool is dropped
    ours = {k: v.shape for k, v in body.state_dict().items()}
    assert ours == {k: v.shape for k, v in tv.state_dict().items() if k.startswith("features.")}
    out = body(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 512, 4, 6)


@pytest.mark.parametrize("div,bn", [(8, False), (4, True)])
def test_width_divisor_and_batch_norm(div, bn):
    body = VGG16(width_divisor=div, batch_norm=bn)
    assert body.out_channels == 512 // div
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules()) == bn
    assert body(torch.randn(2, 3, 32, 48)).shape == (2, 512 // div, 2, 3)


def test_bad_width_divisor():
    with pytest.raises(ValueError, match="WIDTH_DIVISOR"):
        VGG16(width_divisor=3)


def test_freeze_first_blocks_keeps_their_bn_in_eval():
    body = VGG16(width_divisor=16, batch_norm=True, freeze_at=2).train()
    frozen = [n for n, p in body.named_parameters() if not p.requires_grad]
    # blocks 1-2: 4 convs (weight, bias) + 4 BNs (weight, bias)
    assert len(frozen) == 16 and all(int(n.split(".")[1]) < 14 for n in frozen)
    bns = [m for m in body.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert not bns[0].training and not bns[3].training and bns[4].training


def test_imagenet_weights_from_a_local_file(tmp_path):
    features = make_layers(cfgs["D"])  # torchvision's vgg16().features
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    body = VGG16()
    assert load_imagenet_weights(body, str(path)) == "file"
    torch.testing.assert_close(body.features[28].weight, features[28].weight)


def test_wrong_weight_file_fails_clearly(tmp_path):
    bad = tmp_path / "bn.pth"
    torch.save(VGG16(batch_norm=True).state_dict(), bad)
    with pytest.raises(ValueError, match="do not fit"):
        load_imagenet_weights(VGG16(), str(bad))
    with pytest.raises(FileNotFoundError, match="PRETRAINED_BACKBONE"):
        load_imagenet_weights(VGG16(), str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="WIDTH_DIVISOR"):
        load_imagenet_weights(VGG16(width_divisor=2), str(bad))


def test_no_weights_means_random_init_with_a_log_line(caplog):
    body = VGG16(width_divisor=8)
    log = logging.getLogger("maskrcnn_benchmark")  # may not propagate (a tool's setup_logger ran before)
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="maskrcnn_benchmark"):
            assert load_imagenet_weights(body, "") == "random"
            assert load_imagenet_weights(VGG16(width_divisor=1), "", allow_download=False) == "random"
    finally:
        log.removeHandler(caplog.handler)
    assert "random initialisation" in caplog.text
