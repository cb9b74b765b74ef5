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

**Disk tier** (``MODEL.DETECTOR_CACHE_DIR``): the entries are also shared between processes
(the demo's and the learning-curve study's many runs on one detector) through files. Lookup
order: memory, disk (a hit also fills memory while there is room), else the detector (its
entry written to disk). One folder per signature, ``<DIR>/<16 hex digits>/``, named by a hash
of the signature above plus what a later process could differ in: the device's model (a GPU's
name, not its index, so that the ranks of a multi-GPU run share one folder), the torch and
torchvision versions and the source of the detector's code (``modeling/{backbone,rpn,
roi_heads/box_head,detector}``), so that an edited detector never reads old entries. Its
``signature.txt`` says in words what it holds. One file per image, ``<hash of the image
key>.pt``, holding the key (checked on load) and the entry; SGCls entries keep their boxes and a
different box set is a miss (the file is kept). Files are written to a temporary name in the
same folder and renamed (``os.replace``), so a concurrent reader never sees a partial file; an
existing file is not rewritten, except one that cannot be read (truncated, garbage: logged
once, recomputed and replaced); the temporary files of a killed writer on this host are removed
when the folder is next opened. The tool writes only inside signature folders it created
(created whole, marker included, by renaming a temporary folder) and never deletes anything
else: clearing the cache is deleting the folder. ``MODEL.DETECTOR_CACHE_MB`` bounds the bytes of
one signature folder as it bounds memory: what the folder holds when the process opens it plus
what the process writes (concurrent processes each count their own writes, so the folder can
pass the limit by what they write in the same window); past it the process stops writing and
logs once. Numerics: an entry computed by another process (other thread counts, other CPU) may
differ from a fresh computation in the last float bits, as entries computed within one run may
differ from a recomputation; an image key computed differently by another process (its
float64 checksums) is only a miss.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import platform
import socket
import tempfile
import time
from typing import Callable, Dict, Hashable, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

logger = logging.getLogger("maskrcnn_benchmark")

__all__ = ["DetectorCache", "detector_signature", "image_key"]

MARKER = "signature.txt"
_CODE_DIRS = ("backbone", "rpn", os.path.join("roi_heads", "box_head"), "detector")


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


def code_signature() -> str:
    """A hash of the detector's source files (a changed detector code is another disk folder)."""
    root, h = os.path.dirname(os.path.dirname(os.path.abspath(__file__))), hashlib.sha1()
    for sub in _CODE_DIRS:
        folder = os.path.join(root, sub)
        for name in sorted(n for n in os.listdir(folder) if n.endswith(".py")):
            with open(os.path.join(folder, name), "rb") as f:
                h.update(f"{sub}/{name}|".encode() + f.read())
    return h.hexdigest()


def device_name(device: torch.device) -> str:
    """The device's model rather than its index: the ranks of one machine share a folder."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda {torch.cuda.get_device_name(device)} (sm {major}.{minor})"
    return f"{device.type} {platform.machine()}"


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


def _to_cpu(value):
    """CPU copies holding only their own elements (torch.save writes a view's whole storage)."""
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, Tensor):
        t = value.detach().cpu()
        return t.clone() if t.untyped_storage().nbytes() != _nbytes(t) else t
    return value


class DiskStore:
    """The files of one signature folder (see the module docstring)."""

    def __init__(self, root: str, signature: str, description: str, max_bytes: int):
        self.root, self.signature, self.description = root, signature, description
        self.folder = os.path.join(root, signature[:16])
        self.max_bytes = int(max_bytes)
        self.usable = self.writable = True
        self.written = self.bad_files = self.entries_at_start = 0
        self._logged: set = set()
        if os.path.isdir(self.folder) and not self._ours():
            self._stop("not_ours", "detector cache: %s exists but is not this signature's folder (no matching %s): "
                       "the disk tier is off for this run", self.folder, MARKER)
            self.usable = False
        elif os.path.isdir(self.folder):
            self._remove_stale_temporaries()
        self.nbytes = self._scan() if self.usable and os.path.isdir(self.folder) else 0

    def _log_once(self, what: str, *args) -> None:
        if what not in self._logged:
            self._logged.add(what)
            logger.warning(*args)

    def _stop(self, what: str, *args) -> None:
        self.writable = False
        self._log_once(what, *args)

    def _scan(self) -> int:
        """Bytes of the entries and the marker; counts the entries."""
        with os.scandir(self.folder) as it:
            sizes = {e.name: e.stat().st_size for e in it if e.is_file(follow_symlinks=False)
                     and (e.name.endswith(".pt") or e.name == MARKER)}
        self.entries_at_start = len(sizes) - (MARKER in sizes)
        return sum(sizes.values())

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of a killed writer on this host (named ``.<host>.<pid>.<random>.tmp``)."""
        host = socket.gethostname()
        for name in os.listdir(self.folder):
            parts = name[1:-4].rsplit(".", 2) if name.startswith(".") and name.endswith(".tmp") else []
            if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _alive(int(parts[1])):
                try:
                    os.remove(os.path.join(self.folder, name))
                except OSError:
                    pass

    def _ours(self) -> bool:
        try:
            with open(os.path.join(self.folder, MARKER)) as f:
                return f"signature: {self.signature}\n" in f.read()
        except OSError:
            return False

    def path(self, key: Hashable) -> str:
        return os.path.join(self.folder, hashlib.sha1(repr(key).encode()).hexdigest()[:32] + ".pt")

    def load(self, key: Hashable, device: torch.device) -> Tuple[Optional[dict], bool]:
        """(the stored entry or None, whether a file was there but could not be used)."""
        path = self.path(key)
        if not self.usable or not os.path.isfile(path):
            return None, False
        try:
            data = torch.load(path, map_location=device, weights_only=True)
            if not (isinstance(data, dict) and data.get("key") == repr(key) and isinstance(data.get("entry"), dict)
                    and isinstance(data["entry"].get("features"), Tensor)):
                raise ValueError("not an entry of this image key")
        except Exception as e:  # noqa: BLE001  a broken file is recomputed, never trusted
            self.bad_files += 1
            self._log_once("bad", "detector cache: unreadable file %s (%s: %s), recomputed and replaced "
                           "(logged once)", path, type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
            return None, True
        return data["entry"], False

    def save(self, key: Hashable, entry: dict, replace: bool = False) -> None:
        """Write ``entry`` atomically unless its file exists (``replace``: a broken one does)."""
        path = self.path(key)
        if not self.writable or (not replace and os.path.exists(path)):
            return
        buf = io.BytesIO()
        torch.save({"key": repr(key), "entry": _to_cpu(entry)}, buf)
        data = buf.getbuffer()
        if self.nbytes + len(data) > self.max_bytes:
            self._stop("full", "detector cache folder %s full (%.0f MB, MODEL.DETECTOR_CACHE_MB): this process "
                       "writes no more entries", self.folder, self.nbytes / 2 ** 20)
            return
        tmp = None
        try:
            self._make_folder()
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{socket.gethostname()}.{os.getpid()}.",
                                       suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            tmp = None
        except OSError as e:
            self._stop("write", "detector cache: cannot write into %s (%s): this process writes no more entries",
                       self.folder, e.strerror or e)
            return
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)  # our own temporary file
        self.nbytes += len(data)
        self.written += 1

    def _make_folder(self) -> None:
        """Create the signature folder whole (marker inside) by renaming a temporary folder, so
        that a folder named like ours without our marker is never ours."""
        if os.path.isdir(self.folder):
            return
        os.makedirs(self.root, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=self.root, prefix=f".{os.path.basename(self.folder)}.", suffix=".tmp")
        marker = os.path.join(tmp, MARKER)
        with open(marker, "w") as f:
            f.write(f"maskrcnn_benchmark detector cache (modeling/detector/detector_cache.py): the frozen "
                    f"detector's output for one image per <hash>.pt file. Delete this folder to clear it.\n"
                    f"signature: {self.signature}\n{self.description}"
                    f"created: {time.strftime('%Y-%m-%d %H:%M:%S')} by {socket.gethostname()} pid {os.getpid()}\n")
        try:
            os.rename(tmp, self.folder)
            self.nbytes += os.path.getsize(os.path.join(self.folder, MARKER))
        except OSError:  # another process created it first: use theirs, drop our temporary one
            os.remove(marker)
            os.rmdir(tmp)
            if not self._ours():
                self.usable = False
                raise OSError(f"{self.folder} exists without a matching {MARKER}") from None


class DetectorCache:
    """Bounded store of per-image detector outputs: memory, optionally a disk tier.

    Args:
        max_bytes: the limit on stored tensors in memory, and on the bytes of one signature
            folder on disk; once reached, later images are computed as usual and not stored
            (first come, first kept: no eviction churn).
        reuse_in_training: False when training images change between epochs (several
            INPUT.MIN_SIZE_TRAIN sizes, horizontal flip): training batches then neither read nor
            fill the cache; evaluation still does.
        cache_dir: the disk tier's folder (absolute), or None: memory only.
    """

    def __init__(self, max_bytes: int, *, reuse_in_training: bool = True, cache_dir: Optional[str] = None):
        self.max_bytes, self.reuse_in_training = int(max_bytes), reuse_in_training
        self.cache_dir = cache_dir
        self.disk: Optional[DiskStore] = None
        self._entries: Dict[Hashable, dict] = {}
        self._signature: Optional[Tuple[Hashable, str]] = None
        self._checked: Optional[Hashable] = None
        self._device = torch.device("cpu")
        self.nbytes = 0
        self.hits = self.misses = self.disk_hits = 0
        self._warned_full = False

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self) -> None:
        """Weights were loaded into the detector: the next lookup re-hashes it."""
        self._checked = None

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def check_signature(self, detector: nn.Module, context: Sequence[Tuple[str, object]],
                        device: torch.device) -> None:
        """Empty the cache when the detector's signature, the ``context`` ((name, value) pairs:
        mode, dtypes, autocast) or the device differs from that of the stored entries (and open
        the disk folder of the new signature). Hashes the weights only after a load or a change
        of context."""
        context = tuple(context)
        if self._checked == (context, str(device)):
            return
        weights = detector_signature(detector)
        sig = ((context, str(device)), weights)
        if sig != self._signature and self._entries:
            logger.info("detector cache: the detector or its settings changed, %d entries dropped",
                        len(self._entries))
            self.clear()
        if self.cache_dir and (self.disk is None or sig != self._signature):
            parts = [(name, repr(value)) for name, value in context] + [
                ("device", device_name(device)), ("detector weights sha1", weights),
                ("detector code sha1", code_signature()),
                ("torch", torch.__version__), ("torchvision", _torchvision_version())]
            full = hashlib.sha1(repr(parts).encode()).hexdigest()
            self.disk = DiskStore(self.cache_dir, full, "".join(f"{k}: {v}\n" for k, v in parts), self.max_bytes)
            if self.disk.usable:
                logger.info("detector cache on disk: %s (%d entries, %.1f MB)", self.disk.folder,
                            self.disk.entries_at_start, self.disk.nbytes / 2 ** 20)
        self._signature, self._checked, self._device = sig, (context, str(device)), device

    def get_or_compute(self, key: Hashable, compute: Callable[[], dict],
                       valid: Callable[[dict], bool] = lambda entry: True) -> dict:
        """The stored entry for ``key`` if ``valid(entry)`` (memory, then disk), else
        ``compute()`` (stored while there is room)."""
        entry = self._entries.get(key)
        if entry is not None and valid(entry):
            self.hits += 1
            return entry
        broken = False
        if self.disk is not None:
            stored, broken = self.disk.load(key, self._device)
            if stored is not None and valid(stored):
                self.hits += 1
                self.disk_hits += 1
                self._keep(key, stored)
                return stored
        self.misses += 1
        entry = compute()
        self._keep(key, entry)
        if self.disk is not None:
            self.disk.save(key, entry, replace=broken)
        return entry

    def _keep(self, key: Hashable, entry: dict) -> None:
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
                        "images go through the detector every time%s", len(self._entries), self.nbytes / 2**20,
                        " (or come from the disk tier)" if self.disk is not None else "")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _torchvision_version() -> str:
    import torchvision

    return torchvision.__version__
