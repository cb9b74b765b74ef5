"""Reuse of the frozen detector's per-image outputs in stage 2.

The relation stage never trains the detector, and relation configs neither flip nor pick a
random training size, so what the detector gives for an image (its feature map; in SGCls the
class logits of the ground-truth boxes; in SGDet its detections) is the same every epoch. On a
CPU that detector work is about a third of a PredCls training step and most of an SGDet one.
:class:`DetectorCache` keeps those outputs in memory, up to a size limit, so each image goes
through the detector once per run.

Reuse must never change a result, so an entry is used only when everything it depends on is
unchanged: the detector's weights, dtypes and post-processing settings, the device and the
autocast dtype (one *signature*, recomputed whenever weights are loaded into the detector;
a changed signature empties the cache), and the image itself (image id, size and a checksum of
its pixels, so a flipped, rescaled or re-normalised image, or another dataset's image with the
same id, is a miss). SGCls entries also keep the boxes their logits belong to.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Dict, Hashable, Optional, Tuple

import torch
from torch import Tensor, nn

logger = logging.getLogger("maskrcnn_benchmark")

__all__ = ["DetectorCache", "detector_signature", "image_key"]


def _tensor_bytes(t: Tensor) -> bytes:
    t = t.detach().contiguous().cpu()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def detector_signature(detector: nn.Module) -> str:
    """A hash of everything in the detector that shapes its output: every parameter and buffer
    (name, dtype, shape, bytes) and the post-processing settings of its RPN and box head."""
    h = hashlib.sha1()
    for name, t in detector.state_dict().items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(_tensor_bytes(t))
    rpn, roi = getattr(detector, "rpn", None), getattr(detector, "roi_heads", None)
    settings = []
    for mod, names in ((rpn, ("_pre_nms_top_n", "_post_nms_top_n", "nms_thresh", "score_thresh", "min_size")),
                       (roi, ("score_thresh", "nms_thresh", "detections_per_img"))):
        settings += [(n, repr(getattr(mod, n, None))) for n in names]
    h.update(repr(settings).encode())
    return h.hexdigest()


def image_key(image: Tensor, image_id: int) -> Tuple[int, Tuple[int, ...], float, float]:
    """(image id, shape, two checksums of the pixels): a transformed image is another key."""
    x = image.detach().double()
    ramp = torch.linspace(0.5, 1.5, x.shape[-1], dtype=torch.float64, device=x.device)
    return int(image_id), tuple(image.shape), float(x.sum()), float((x * ramp).sum())


def _nbytes(value) -> int:
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    return 0


class DetectorCache:
    """Bounded in-memory store of per-image detector outputs.

    Args:
        max_bytes: the limit on stored tensors; once reached, later images are computed as
            usual and not stored (first come, first kept: no eviction churn).
        reuse_in_training: False when training images change between epochs (several
            INPUT.MIN_SIZE_TRAIN sizes, horizontal flip): training batches then neither read nor
            fill the cache; evaluation still does.
    """

    def __init__(self, max_bytes: int, *, reuse_in_training: bool = True):
        self.max_bytes, self.reuse_in_training = int(max_bytes), reuse_in_training
        self._entries: Dict[Hashable, dict] = {}
        self._signature: Optional[Tuple[Hashable, str]] = None
        self._checked: Optional[Hashable] = None
        self.nbytes = 0
        self.hits = self.misses = 0
        self._warned_full = False

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self) -> None:
        """Weights were loaded into the detector: the next lookup re-hashes it."""
        self._checked = None

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def check_signature(self, detector: nn.Module, context: Hashable) -> None:
        """Empty the cache when the detector's signature or the ``context`` (mode, device,
        autocast) differs from that of the stored entries. Hashes the weights only after a
        load or a change of context."""
        if self._checked == context:
            return
        sig = (context, detector_signature(detector))
        if sig != self._signature and self._entries:
            logger.info("detector cache: the detector or its settings changed, %d entries dropped",
                        len(self._entries))
            self.clear()
        self._signature, self._checked = sig, context

    def get_or_compute(self, key: Hashable, compute: Callable[[], dict],
                       valid: Callable[[dict], bool] = lambda entry: True) -> dict:
        """The stored entry for ``key`` if ``valid(entry)``, else ``compute()`` (stored while
        there is room)."""
        entry = self._entries.get(key)
        if entry is not None and valid(entry):
            self.hits += 1
            return entry
        self.misses += 1
        entry = compute()
        size = _nbytes(entry)
        old = self._entries.pop(key, None)
        if old is not None:
            self.nbytes -= _nbytes(old)
        if self.nbytes + size <= self.max_bytes:
            self._entries[key] = entry
            self.nbytes += size
        elif not self._warned_full:
            self._warned_full = True
            logger.info("detector cache full (%d images, %.0f MB, MODEL.DETECTOR_CACHE_MB): further "
                        "images go through the detector every time", len(self._entries), self.nbytes / 2**20)
        return entry
