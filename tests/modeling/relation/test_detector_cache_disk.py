"""The detector cache's disk tier (MODEL.DETECTOR_CACHE_DIR): entries shared between processes,
exact, written atomically, bounded, and never outside the folders it creates."""
import logging
import os

import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.config import ConfigError
from maskrcnn_benchmark.modeling.detector.detector_cache import MARKER, DetectorCache
from maskrcnn_benchmark.modeling.detector.scene_graph import build_detector_cache

from .test_detector_cache import _images, _model, _step, _targets


def _disk_model(make_cfg, mode, stats, folder, cache_mb=64):
    """A model as another process would build it: same seed, cache folder ``folder``."""
    cfg = make_cfg(mode)
    cfg.MODEL.DETECTOR_CACHE_DIR = str(folder)
    return _model(cfg, stats, cache_mb)


def _folders(root):
    return sorted(e.name for e in os.scandir(root) if e.is_dir())


def _files(folder):
    return sorted(n for n in os.listdir(folder) if n != MARKER)


def _eval(model, images, targets):
    with torch.no_grad():
        return model.eval()(images, targets), model._detector_outputs(images, targets)


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)


@pytest.mark.parametrize("mode", ["predcls", "sgcls", "sgdet"])
def test_a_second_process_reads_the_first_ones_entries(mode, make_cfg, make_batch, stats, tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    (root / "notes.txt").write_text("the user's file")
    images, targets = _images(), _targets(make_batch, mode)
    first = _disk_model(make_cfg, mode, stats, root)
    out_a, det_a = _eval(first, images, targets)
    assert first.detector_cache.disk_hits == 0 and first.detector_cache.disk.written == 2
    (sig,) = _folders(root)
    folder = root / sig
    assert len(_files(folder)) == 2 and all(n.endswith(".pt") for n in _files(folder))  # no temporary file left
    assert f"mode: '{mode}'" in (folder / MARKER).read_text()  # says in words what it holds

    second = _disk_model(make_cfg, mode, stats, root)
    out_b, det_b = _eval(second, images, targets)
    assert second.detector_cache.disk_hits == 2 and second.detector_cache.misses == 0
    assert len(second.detector_cache) == 2  # the disk hits filled memory
    _assert_same(det_a, det_b)
    _assert_same(out_a, out_b)

    third = _disk_model(make_cfg, mode, stats, root)  # a training step straight from the disk
    plain = _model(make_cfg(mode), stats, 0)
    losses_a, grads_a = _step(plain, images, targets)
    losses_b, grads_b = _step(third, images, targets)
    assert third.detector_cache.disk_hits == 2 and third.detector_cache.misses == 0
    assert losses_a.keys() == losses_b.keys() and grads_a.keys() == grads_b.keys()
    for k in losses_a:
        torch.testing.assert_close(losses_a[k], losses_b[k], rtol=1e-5, atol=1e-6)
    for k in grads_a:
        torch.testing.assert_close(grads_a[k], grads_b[k], rtol=1e-4, atol=1e-6)
    assert (root / "notes.txt").read_text() == "the user's file"
    assert sorted(os.listdir(root)) == sorted(["notes.txt", sig])  # only our folder was added


def test_another_detector_is_another_folder(make_cfg, make_batch, stats, tmp_path):
    images, targets = _images(), _targets(make_batch, "sgdet")
    _eval(_disk_model(make_cfg, "sgdet", stats, tmp_path), images, targets)
    other = _disk_model(make_cfg, "sgdet", stats, tmp_path)
    state = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
             for k, v in other.detector.state_dict().items()}
    other.load_pretrained_detector(state)
    _, got = _eval(other, images, targets)
    assert other.detector_cache.disk_hits == 0 and len(_folders(tmp_path)) == 2
    fresh = _model(make_cfg("sgdet"), stats, 0)
    fresh.load_pretrained_detector(state)
    _, expected = _eval(fresh, images, targets)
    _assert_same(got, expected)


def test_sgcls_other_boxes_miss_and_the_file_is_kept(make_cfg, make_batch, stats, tmp_path):
    images, targets = _images(), _targets(make_batch, "sgcls")
    _eval(_disk_model(make_cfg, "sgcls", stats, tmp_path), images, targets)
    (sig,) = _folders(tmp_path)
    files = {n: os.stat(tmp_path / sig / n) for n in _files(tmp_path / sig)}
    moved = [dict(t, boxes=t["boxes"] + 1.0) for t in targets]
    second = _disk_model(make_cfg, "sgcls", stats, tmp_path)
    with torch.no_grad():
        got = second.eval()._detector_outputs(images, moved)
        expected = _model(make_cfg("sgcls"), stats, 0).eval()._detector_outputs(images, moved)
    assert second.detector_cache.disk_hits == 0 and second.detector_cache.misses == 2
    for a, b in zip(got, expected):
        assert torch.equal(a["class_logits"], b["class_logits"])
    for n, st in files.items():  # not rewritten
        now = os.stat(tmp_path / sig / n)
        assert (now.st_ino, now.st_mtime_ns, now.st_size) == (st.st_ino, st.st_mtime_ns, st.st_size)
    assert _files(tmp_path / sig) == sorted(files)


def test_a_broken_file_is_logged_once_recomputed_and_replaced(make_cfg, make_batch, stats, tmp_path, caplog):
    images, targets = _images(), _targets(make_batch, "predcls")
    out_a, det_a = _eval(_disk_model(make_cfg, "predcls", stats, tmp_path), images, targets)
    (sig,) = _folders(tmp_path)
    truncated, garbage = (tmp_path / sig / n for n in _files(tmp_path / sig))
    truncated.write_bytes(truncated.read_bytes()[:100])
    garbage.write_bytes(b"not a torch file")
    second = _disk_model(make_cfg, "predcls", stats, tmp_path)
    with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark"):
        out_b, det_b = _eval(second, images, targets)
    lines = [r.getMessage() for r in caplog.records if "unreadable file" in r.getMessage()]
    assert len(lines) == 1 and sig in lines[0]
    assert second.detector_cache.disk.bad_files == 2 and second.detector_cache.misses == 2
    _assert_same(det_a, det_b)
    _assert_same(out_a, out_b)
    third = _disk_model(make_cfg, "predcls", stats, tmp_path)
    _eval(third, images, targets)
    assert third.detector_cache.disk_hits == 2  # the broken files were replaced


def _cpu_cache(folder, max_bytes=10**6):
    cache = DetectorCache(max_bytes, cache_dir=str(folder))
    cache.check_signature(_fixed_net(), (("mode", "predcls"),), torch.device("cpu"))
    return cache


def _fixed_net():
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.zero_()
    return net


def _entry(i):
    return {"features": torch.full((100,), float(i))}


def test_writes_go_through_a_temporary_name_and_never_over_a_file(tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        assert os.path.dirname(src) == os.path.dirname(dst) and os.path.basename(src).endswith(".tmp")
        assert not os.path.exists(dst) and os.path.getsize(src) > 0  # complete before it gets its name
        replaced.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    a, b = _cpu_cache(tmp_path), _cpu_cache(tmp_path)  # two processes
    a.get_or_compute("k", lambda: _entry(1))
    assert len(replaced) == 1
    b._entries.clear()
    b.get_or_compute("k2", lambda: _entry(2))
    b.disk.save("k", _entry(1))  # b computed "k" too, a wrote it first: not rewritten
    assert len(replaced) == 2
    c = _cpu_cache(tmp_path)
    assert torch.equal(c.get_or_compute("k", lambda: _entry(9))["features"], _entry(1)["features"])
    assert c.disk_hits == 1
    (sig,) = _folders(tmp_path)
    assert not [n for n in os.listdir(tmp_path / sig) if n.endswith(".tmp")]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_the_size_limit_stops_writing(tmp_path, caplog):
    probe = _cpu_cache(tmp_path / "probe")
    probe.get_or_compute(0, lambda: _entry(0))
    (sig,) = _folders(tmp_path / "probe")
    marker = os.path.getsize(tmp_path / "probe" / sig / MARKER)
    (entry,) = [os.path.getsize(tmp_path / "probe" / sig / n) for n in _files(tmp_path / "probe" / sig)]
    limit = marker + 2 * entry + entry // 2
    cache = _cpu_cache(tmp_path / "run", limit)
    with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark"):
        for i in range(4):
            cache.get_or_compute(i, lambda i=i: _entry(i))
    assert cache.disk.written == 2 and len(_files(tmp_path / "run" / sig)) == 2
    assert cache.disk.nbytes == marker + 2 * entry  # the marker counts too
    assert len([r for r in caplog.records if "full" in r.getMessage()]) == 1
    later = _cpu_cache(tmp_path / "run", limit)  # counts what is there
    assert later.disk.nbytes == marker + 2 * entry
    later.get_or_compute(5, lambda: _entry(5))
    assert later.disk.written == 0 and later.get_or_compute(1, lambda: _entry(9))["features"][0] == 1
    assert later.disk_hits == 1


def test_a_folder_not_made_by_the_cache_is_left_alone(tmp_path, caplog):
    probe = _cpu_cache(tmp_path / "probe")
    probe.get_or_compute(0, lambda: _entry(0))
    (sig,) = _folders(tmp_path / "probe")
    theirs = tmp_path / "run" / sig
    theirs.mkdir(parents=True)
    (theirs / "data.bin").write_bytes(b"user data")
    with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark"):
        cache = _cpu_cache(tmp_path / "run")
        cache.get_or_compute(0, lambda: _entry(0))
    assert os.listdir(theirs) == ["data.bin"] and (theirs / "data.bin").read_bytes() == b"user data"
    assert any("not this signature's folder" in r.getMessage() for r in caplog.records)


def test_the_folder_setting(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg("predcls")
    cfg.MODEL.DETECTOR_CACHE_MB = 1
    assert build_detector_cache(cfg).cache_dir is None  # "": memory only
    monkeypatch.chdir(tmp_path)
    cfg.MODEL.DETECTOR_CACHE_DIR = "cache"
    assert build_detector_cache(cfg).cache_dir == str(tmp_path / "cache")  # from the working directory
    (tmp_path / "file").write_text("")
    cfg.MODEL.DETECTOR_CACHE_DIR = "file"
    with pytest.raises(ConfigError, match="MODEL.DETECTOR_CACHE_DIR .*file exists and is not a folder"):
        build_detector_cache(cfg)
    cfg.MODEL.DETECTOR_CACHE_MB = 0
    assert build_detector_cache(cfg) is None


def test_a_killed_writers_temporary_file_is_removed_a_live_ones_kept(tmp_path):
    import socket
    import subprocess
    import sys

    first = _cpu_cache(tmp_path)
    first.get_or_compute(0, lambda: _entry(0))
    (sig,) = _folders(tmp_path)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    dead = tmp_path / sig / f".{host}.{int(done.stdout)}.abc123.tmp"
    live = tmp_path / sig / f".{host}.{os.getpid()}.def456.tmp"
    other_host = tmp_path / sig / f".elsewhere.{int(done.stdout)}.ghi789.tmp"
    for f in (dead, live, other_host):
        f.write_bytes(b"partial")
    _cpu_cache(tmp_path)
    assert not dead.exists() and live.exists() and other_host.exists()
