"""tools/sgg_infer.py never writes over a user's file, and handles odd images and inputs with one
clear line: 16-bit PNGs, extreme aspect ratios, a PredCls model without --boxes, garbage images
decoded in workers, and a --boxes file with more boxes than the stated limit."""
import json
import os

import numpy as np
from PIL import Image

from .test_sgg_infer import checkpoint, infer, load, picture  # noqa: F401 - the checkpoint fixture


def snapshot(folder):
    return {p: open(os.path.join(folder, p), "rb").read() for p in sorted(os.listdir(folder))}


def test_output_inside_the_images_folder_is_refused_and_nothing_is_written(checkpoint, tmp_path, capsys):
    photos = tmp_path / "D"
    photos.mkdir()
    picture(96, 64).save(photos / "photo.png")
    (photos / "photo.json").write_text('{"mine": true}')
    before = snapshot(photos)
    for out in (photos, photos / "sub"):
        assert infer("--checkpoint", checkpoint, "--images", photos, "--output", out) == 2
        assert "is inside the --images folder" in capsys.readouterr().err
    assert snapshot(photos) == before


def test_input_images_and_foreign_files_in_output_are_never_overwritten(checkpoint, tmp_path):
    out = tmp_path / "D"
    out.mkdir()
    picture(96, 64).save(out / "photo.png")
    (out / "photo.json").write_text('{"mine": true}')
    before = snapshot(out)
    assert infer("--checkpoint", checkpoint, "--images", out / "photo.png", "--output", out) == 0
    assert {k: snapshot(out)[k] for k in before} == before
    (rec,) = load(out / "index.json")["images"]
    assert (rec["json"], rec["png"]) == ("photo_2.json", "photo_2.png")
    # a rerun rewrites its own outputs (same names), still nothing of the user's
    assert infer("--checkpoint", checkpoint, "--images", out / "photo.png", "--output", out) == 0
    assert [r["json"] for r in load(out / "index.json")["images"]] == ["photo_2.json"]
    assert {k: snapshot(out)[k] for k in before} == before


def test_output_folder_with_someone_elses_index_or_config_is_refused(checkpoint, tmp_path, capsys):
    picture(96, 64).save(tmp_path / "x.png")
    for name in ("index.json", "config.yaml"):
        out = tmp_path / f"out_{name}"
        out.mkdir()
        (out / name).write_text('{"not": "ours"}')
        assert infer("--checkpoint", checkpoint, "--images", tmp_path / "x.png", "--output", out) == 2
        assert "choose another --output" in capsys.readouterr().err
        assert os.listdir(out) == [name] and (out / name).read_text() == '{"not": "ours"}'


def test_16_bit_grayscale_png_is_scaled_not_white(tmp_path):
    from maskrcnn_benchmark.data.image import to_rgb
    from maskrcnn_benchmark.engine.image_input import open_image
    depth16 = (np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16)  # 0 .. 59950
    Image.fromarray(depth16).save(tmp_path / "depth.png")
    assert Image.open(tmp_path / "depth.png").mode.startswith("I;16")
    rgb = np.asarray(open_image(str(tmp_path / "depth.png")))
    assert rgb.shape == (30, 40, 3) and rgb.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], np.rint(depth16 / 257.0).astype(np.uint8))
    as_i32 = Image.fromarray(depth16.astype(np.int32), mode="I")
    np.testing.assert_array_equal(np.asarray(to_rgb(as_i32))[..., 0], np.rint(depth16 / 257.0).astype(np.uint8))
    eight_bit = Image.fromarray((depth16 // 257).astype(np.int32), mode="I")  # 0..233 in an "I" image: kept
    np.testing.assert_array_equal(np.asarray(to_rgb(eight_bit))[..., 1], depth16 // 257)


def test_extreme_aspect_ratios_are_processed_and_the_run_goes_on(checkpoint, tmp_path):
    from maskrcnn_benchmark.data.transforms.transforms import resized_shape
    assert resized_shape(5000, 2, 64, 128) == (1, 128) and resized_shape(2, 5000, 600, 1000) == (1000, 1)
    assert resized_shape(800, 600, 600, 1000) == (600, 800)  # SGB's rule otherwise
    folder = tmp_path / "imgs"
    folder.mkdir()
    picture(5000, 2).save(folder / "a_wide.png")
    picture(2, 5000).save(folder / "b_tall.png")
    picture(96, 64).save(folder / "c_normal.png")
    assert infer("--checkpoint", checkpoint, "--images", folder, "--output", tmp_path / "out") == 0
    index = load(tmp_path / "out" / "index.json")
    assert index["skipped"] == [] and index["completed"]
    sizes = {os.path.basename(r["image"]): (r["width"], r["height"]) for r in index["images"]}
    assert sizes == {"a_wide.png": (5000, 2), "b_tall.png": (2, 5000), "c_normal.png": (96, 64)}
    for r in index["images"]:
        for o in load(tmp_path / "out" / r["json"])["objects"]:
            x1, y1, x2, y2 = o["box"]
            assert 0 <= x1 <= x2 <= r["width"] and 0 <= y1 <= y2 <= r["height"]


def test_predcls_checkpoint_without_boxes_is_one_clear_line(tmp_path, capsys):
    from .test_export import save_tiny_checkpoint
    save_tiny_checkpoint(tmp_path / "predcls.pth", mode="predcls")
    picture(96, 64).save(tmp_path / "x.png")
    assert infer("--checkpoint", tmp_path / "predcls.pth", "--images", tmp_path / "x.png",
                 "--output", tmp_path / "out") == 2
    logged = capsys.readouterr().out
    assert "was trained in PredCls" in logged and "pass --boxes FILE" in logged and "Traceback" not in logged


def test_boxes_beyond_the_stated_limit_are_refused_or_allowed_by_the_override(checkpoint, tmp_path, capsys):
    picture(96, 64).save(tmp_path / "x.png")
    boxes = [[i, i, i + 20, i + 20] for i in range(7)]  # the tiny checkpoint's DETECTIONS_PER_IMG is 6
    (tmp_path / "boxes.json").write_text(json.dumps({"x.png": boxes}))
    argv = ["--checkpoint", checkpoint, "--images", tmp_path / "x.png", "--boxes", tmp_path / "boxes.json"]
    assert infer(*argv, "--output", tmp_path / "a") == 2
    logged = capsys.readouterr().out
    assert "more than 6 boxes (entry 'x.png': 7)" in logged and "MODEL.ROI_HEADS.DETECTIONS_PER_IMG N" in logged
    assert not (tmp_path / "a" / "index.json").exists()
    assert infer(*argv, "--output", tmp_path / "b", "MODEL.ROI_HEADS.DETECTIONS_PER_IMG", 7) == 0
    (rec,) = load(tmp_path / "b" / "index.json")["images"]
    assert rec["num_objects"] == 7


def test_full_disk_while_writing_outputs_is_one_clear_line(checkpoint, tmp_path, capsys, monkeypatch):
    import errno

    from maskrcnn_benchmark.utils import checkpoint as ckpt_module
    real_replace = os.replace

    def full(src, dst):
        if dst.endswith(".png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)
    monkeypatch.setattr(ckpt_module.os, "replace", full)
    picture(96, 64).save(tmp_path / "x.png")
    assert infer("--checkpoint", checkpoint, "--images", tmp_path / "x.png", "--output", tmp_path / "out") == 2
    logged = capsys.readouterr().out
    assert "cannot write" in logged and "x.png (the disk is full)" in logged and "Traceback" not in logged
