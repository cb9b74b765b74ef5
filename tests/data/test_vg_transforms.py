"""Joint image/box transforms: SGB's resize rule, flip, normalisation, config wiring."""
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.data.transforms import (Normalize, RandomHorizontalFlip, Resize,
                                                build_transforms, resized_shape)


@pytest.mark.parametrize("w, h, min_size, max_size, expected", [
    (400, 300, 600, 1000, (600, 800)),  # shorter side to min_size
    (300, 400, 600, 1000, (800, 600)),
    (1000, 500, 600, 1000, (500, 1000)),  # longer side capped at max_size
    (600, 400, 400, 1000, (400, 600)),  # already the right size
    (256, 163, 256, 256, (163, 256)),
])
def test_resized_shape_sgb_rule(w, h, min_size, max_size, expected):
    assert resized_shape(w, h, min_size, max_size) == expected


def test_resize_scales_boxes_and_draws_min_size():
    torch.manual_seed(0)
    boxes = torch.tensor([[10.0, 20.0, 50.0, 60.0]])
    sizes = set()
    for _ in range(30):
        img, t = Resize((50, 100), 1000)(Image.new("RGB", (200, 100)), {"boxes": boxes})
        sizes.add(img.size)
        sx, sy = img.size[0] / 200, img.size[1] / 100
        assert torch.allclose(t["boxes"], boxes * torch.tensor([sx, sy, sx, sy]))
    assert sizes == {(100, 50), (200, 100)}


def test_flip_moves_pixels_and_boxes_together():
    img = Image.new("RGB", (100, 40))
    img.paste((255, 0, 0), (10, 5, 30, 20))  # a red block inside box [10, 5, 30, 20]
    boxes = torch.tensor([[10.0, 5.0, 30.0, 20.0]])
    flipped, t = RandomHorizontalFlip(1.0)(img, {"boxes": boxes})
    assert t["boxes"].tolist() == [[70.0, 5.0, 90.0, 20.0]]
    x = to_tensor(flipped)
    assert x[0, 10, 75] == 1 and x[0, 10, 25] == 0
    back, t2 = RandomHorizontalFlip(1.0)(flipped, t)
    assert torch.equal(t2["boxes"], boxes) and list(back.getdata()) == list(img.getdata())
    same, t3 = RandomHorizontalFlip(0.0)(img, {"boxes": boxes})
    assert same is img and torch.equal(t3["boxes"], boxes)


def test_flip_probability():
    torch.manual_seed(0)
    flips = sum(RandomHorizontalFlip(0.5)(Image.new("RGB", (4, 4)),
                                          {"boxes": torch.tensor([[0.0, 0, 1, 1]])})[1][
        "boxes"][0, 0].item() == 3 for _ in range(400))
    assert 150 < flips < 250


def test_normalize_rgb_and_bgr255():
    x = torch.stack([torch.full((2, 2), v) for v in (0.1, 0.2, 0.3)])
    out, _ = Normalize([0.5, 0.5, 0.5], [0.25, 0.5, 1.0])(x)
    assert torch.allclose(out[:, 0, 0], torch.tensor([-1.6, -0.6, -0.2]))
    out, _ = Normalize([100.0, 50.0, 25.0], [1.0, 1.0, 1.0], to_bgr255=True)(x)
    assert torch.allclose(out[:, 0, 0], torch.tensor([0.3 * 255 - 100, 0.2 * 255 - 50,
                                                      0.1 * 255 - 25]))
    with pytest.raises(ValueError, match="PIXEL_STD"):
        Normalize([0.5] * 3, [0.0, 1.0, 1.0])


def test_build_transforms_from_config():
    cfg = load_config(None, ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "128",
                             "INPUT.MIN_SIZE_TEST", "32", "INPUT.MAX_SIZE_TEST", "48",
                             "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", "1.0"])
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    img, t = build_transforms(cfg, True)(Image.new("RGB", (200, 100)), {"boxes": box})
    assert img.shape == (3, 64, 128)
    assert torch.allclose(t["boxes"], torch.tensor([[121.6, 0.0, 128.0, 6.4]]))
    img, t = build_transforms(cfg, False)(Image.new("RGB", (200, 100)), {"boxes": box})
    assert img.shape == (3, 24, 48) and t["boxes"][0, 0] == 0  # no flip at test time
    mean, std = torch.tensor(cfg.INPUT.PIXEL_MEAN), torch.tensor(cfg.INPUT.PIXEL_STD)
    assert torch.allclose(img[:, 0, 0], -mean / std)  # black pixels, normalised
