"""Detector training/inference speed on random images of a config's input size.

    python benchmarks/bench_detector.py --config-file configs/synthvg/detector_VGG16.yaml [--iters 10] [KEY VALUE ...]

Prints seconds per training iteration (IMS_PER_BATCH images, MIN_SIZE_TRAIN x MAX_SIZE_TRAIN-bounded
4:3 images, 6 boxes each) and per inference batch (TEST.IMS_PER_BATCH), after 2 warm-up iterations.
"""
from __future__ import annotations

import argparse
import time

import torch
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.solver import make_optimizer
from maskrcnn_benchmark.utils.miscellaneous import resolve_device


def fake_batch(n: int, short: int, long_max: int, num_classes: int, device):
    h, w = short, min(long_max, short * 4 // 3)
    h32, w32 = (h + 31) // 32 * 32, (w + 31) // 32 * 32
    g = torch.Generator().manual_seed(0)
    images = ImageList(torch.randn(n, 3, h32, w32, generator=g).to(device), [(h, w)] * n)
    targets = []
    for _ in range(n):
        xy = torch.rand(6, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
        wh = (0.1 + 0.3 * torch.rand(6, 2, generator=g)) * torch.tensor([w, h])
        targets.append({"boxes": torch.cat([xy, xy + wh], 1).to(device),
                        "labels": torch.randint(1, num_classes, (6,), generator=g).to(device)})
    return images, targets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config-file", default="")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("opts", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cfg = load_config(args.config_file, args.opts)
    device = resolve_device(cfg.MODEL.DEVICE)
    model = build_detection_model(cfg, load_pretrained=False).to(device)
    opt = make_optimizer(cfg, model)
    images, targets = fake_batch(cfg.SOLVER.IMS_PER_BATCH, cfg.INPUT.MIN_SIZE_TRAIN[0], cfg.INPUT.MAX_SIZE_TRAIN,
                                 cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, device)
    train_hw = tuple(images.tensors.shape[-2:])
    model.train()
    for i in range(args.iters + 2):
        if i == 2:
            t0 = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = (time.perf_counter() - t0) / args.iters
    model.eval()
    images, _ = fake_batch(cfg.TEST.IMS_PER_BATCH, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST,
                           cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES, device)
    with torch.no_grad():
        for i in range(args.iters + 2):
            if i == 2:
                t0 = time.perf_counter()
            model(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    test_s = (time.perf_counter() - t0) / args.iters
    print(f"device {device}, threads {torch.get_num_threads()}, params "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M")
    print(f"train: {train_s:.3f} s/iter ({cfg.SOLVER.IMS_PER_BATCH} images of {train_hw})")
    print(f"test:  {test_s:.3f} s/batch ({cfg.TEST.IMS_PER_BATCH} images)")


if __name__ == "__main__":
    main()
