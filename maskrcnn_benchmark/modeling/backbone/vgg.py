"""VGG-16 conv body (stride 16): torchvision's VGG-16 "D" layer layout without the last max-pool."""
from __future__ import annotations

import logging
import os

import torch
from torch import nn
from torchvision.models import vgg as tv_vgg

logger = logging.getLogger("maskrcnn_benchmark")


class VGG16(nn.Module):
    """VGG-16 conv1_1 .. conv5_3 + ReLU; images [B, 3, H, W] -> features [B, C, H/16, W/16].

    Args:
        width_divisor: every conv width is divided by this (1: the real VGG-16, C = 512).
            CPU configs use 4 or 8; ImageNet weights only fit width_divisor 1.
        batch_norm: BatchNorm after every conv (torchvision's vgg16_bn layout).
        freeze_at: the first ``freeze_at`` conv blocks (0..5; a block ends at a max-pool) get
            ``requires_grad = False`` and keep their BatchNorm layers in eval mode.

    Parameter names equal torchvision's (``features.<i>.weight``), so torchvision's ImageNet
    state dicts load directly (see :func:`load_imagenet_weights`).
    """

    def __init__(self, *, width_divisor: int = 1, batch_norm: bool = False, freeze_at: int = 0) -> None:
        super().__init__()
        if width_divisor < 1 or 64 % width_divisor:
            raise ValueError(f"MODEL.BACKBONE.WIDTH_DIVISOR must divide 64, got {width_divisor}")
        if not 0 <= freeze_at <= 5:
            raise ValueError(f"MODEL.BACKBONE.FREEZE_CONV_BODY_AT must be in 0..5, got {freeze_at}")
        layout = [v if v == "M" else v // width_divisor for v in tv_vgg.cfgs["D"]]
        assert layout[-1] == "M"
        self.features = tv_vgg.make_layers(layout[:-1], batch_norm=batch_norm)
        self.out_channels = 512 // width_divisor
        self.width_divisor = width_divisor
        self.batch_norm = batch_norm
        self.freeze_at = freeze_at
        self._frozen = self._frozen_modules(freeze_at)
        for m in self._frozen:
            for p in m.parameters():
                p.requires_grad_(False)

    def _frozen_modules(self, blocks: int) -> list[nn.Module]:
        out: list[nn.Module] = []
        seen = 0
        for m in self.features:
            if seen >= blocks:
                break
            out.append(m)
            seen += isinstance(m, nn.MaxPool2d)
        return out

    def train(self, mode: bool = True) -> "VGG16":
        super().train(mode)
        for m in self._frozen:
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] -> [B, out_channels, H // 16, W // 16]."""
        return self.features(images)


def load_imagenet_weights(backbone: VGG16, path: str = "", allow_download: bool = True) -> str:
    """Initialise ``backbone`` from ImageNet VGG-16 weights; returns where they came from.

    ``path``: a local torchvision VGG-16 (or VGG-16-BN when ``batch_norm``) state dict file,
    e.g. ``vgg16-397923af.pth``. Without it torchvision's weights are used when cached or
    downloadable; when neither works the backbone keeps its random initialisation and a log
    line says so. Returns "file", "torchvision" or "random".
    """
    if backbone.width_divisor != 1:
        if path:
            raise ValueError(f"MODEL.PRETRAINED_BACKBONE={path!r} holds full-width VGG-16 weights, but "
                             f"MODEL.BACKBONE.WIDTH_DIVISOR={backbone.width_divisor}; set "
                             "WIDTH_DIVISOR 1 or MODEL.PRETRAINED_BACKBONE ''")
        logger.info("VGG-16 backbone: random initialisation (WIDTH_DIVISOR=%d, no ImageNet "
                    "weights for a narrowed network)", backbone.width_divisor)
        return "random"
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"MODEL.PRETRAINED_BACKBONE: no such file {path!r}; give a local "
                                    "torchvision VGG-16 state dict or set it to '' (download/random)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or not a torch file
            raise RuntimeError(f"MODEL.PRETRAINED_BACKBONE: cannot read {path!r} ({e})") from e
        source = "file"
    else:
        if not allow_download:
            logger.warning("VGG-16 backbone: random initialisation (no MODEL.PRETRAINED_BACKBONE)")
            return "random"
        weights = tv_vgg.VGG16_BN_Weights.IMAGENET1K_V1 if backbone.batch_norm else tv_vgg.VGG16_Weights.IMAGENET1K_V1
        try:
            state = weights.get_state_dict(progress=False)
        except Exception as e:  # offline
            logger.warning("VGG-16 backbone: RANDOM initialisation: MODEL.PRETRAINED_BACKBONE is empty and "
                           "torchvision's ImageNet weights could not be downloaded (%s). Point "
                           "MODEL.PRETRAINED_BACKBONE at a local %s file for a real detector.",
                           e, os.path.basename(weights.url))
            return "random"
        source = "torchvision"
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    _load_features(backbone, state, path or "torchvision's ImageNet weights")
    logger.info("VGG-16 backbone: ImageNet weights from %s", path or "torchvision")
    return source


def _load_features(backbone: VGG16, state: dict, where: str) -> None:
    own = backbone.state_dict()
    feats = {k: v for k, v in state.items() if k.startswith("features.")}
    missing = [k for k in own if k not in feats]
    bad = [f"{k}: file {tuple(feats[k].shape)} vs model {tuple(v.shape)}"
           for k, v in own.items() if k in feats and feats[k].shape != v.shape]
    if missing or bad:
        hint = " (is it a VGG-16-BN file while MODEL.BACKBONE.BATCH_NORM differs?)"
        raise ValueError(f"ImageNet weights in {where} do not fit the VGG-16 backbone{hint}; "
                         f"missing: {missing[:8]}{'...' if len(missing) > 8 else ''}; "
                         f"shape mismatches: {bad[:8]}")
    backbone.load_state_dict({k: feats[k] for k in own})
