"""tools/sgg_infer.py: scene graphs for users' images from a tiny random checkpoint (no dataset)."""
import importlib.util
import json
import os

import numpy as np
import torch
import pytest
from PIL import Image

from maskrcnn_benchmark.engine.image_input import (BoxesFileError, ImageRefused, list_images, match_boxes,
                                                   open_image, read_boxes_file)

from .test_export import NUM_REL, OBJ, REL, save_tiny_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location("sgg_infer_tool", os.path.join(ROOT, "tools", "sgg_infer.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TOOL = _tool()


def infer(*argv):
    return TOOL.main(["--no-progress"] + [str(a) for a in argv] + ["MODEL.DEVICE", "cpu"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "model_best.pth"
    save_tiny_checkpoint(path, mode="sgdet")
    return path


def picture(width, height, seed=0):
    """A smooth random picture (so that resizing it is well defined)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.BICUBIC)


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory):
    """big.png (192x128) and small.png = big resized to 96x64 by the same Pillow call the test
    transform makes: with MIN_SIZE_TEST 64 both reach the model as the same tensor."""
    folder = tmp_path_factory.mktemp("imgs")
    big = picture(192, 128)
    big.save(folder / "big.png")
    big.resize((96, 64), Image.BILINEAR).save(folder / "small.png")
    return folder


def load(path):
    with open(path) as f:
        return json.load(f)


def test_sgdet_output_schema_and_original_pixel_boxes(checkpoint, two_sizes, tmp_path):
    assert infer("--checkpoint", checkpoint, "--images", two_sizes, "--output", tmp_path, "--batch-size", 2,
                 "--topk", 7, "--full-scores") == 0
    index = load(tmp_path / "index.json")
    assert index["format"] == "maskrcnn_benchmark-sgg-infer-index-v1" and index["completed"]
    assert index["mode"] == index["trained_mode"] == "sgdet" and index["skipped"] == []
    assert index["checkpoint"] == str(checkpoint) and index["checkpoint_info"]["iteration"] == 7
    assert index["obj_classes"] == OBJ and index["rel_classes"] == REL
    assert index["config"]["MODEL"]["ROI_RELATION_HEAD"]["USE_GT_BOX"] is False
    records = {os.path.basename(r["image"]): r for r in index["images"]}
    assert set(records) == {"big.png", "small.png"}
    out = {}
    for name, rec in records.items():
        sg = load(tmp_path / rec["json"])
        assert (tmp_path / rec["png"]).is_file() and Image.open(tmp_path / rec["png"]).width >= 192
        assert sg["format"] == "maskrcnn_benchmark-scene-graph-v1" and sg["mode"] == "sgdet"
        assert (sg["width"], sg["height"]) == ((192, 128) if name == "big.png" else (96, 64))
        assert rec["num_objects"] == len(sg["objects"]) > 1 and rec["num_relations"] == len(sg["relations"]) == 7
        for i, o in enumerate(sg["objects"]):
            assert set(o) == {"index", "box", "label", "name", "score"} and o["index"] == i
            assert o["name"] == OBJ[o["label"]] and 0 < o["score"] <= 1
            x1, y1, x2, y2 = o["box"]
            assert 0 <= x1 <= x2 <= sg["width"] and 0 <= y1 <= y2 <= sg["height"]
        scores = [r["score"] for r in sg["relations"]]
        assert scores == sorted(scores, reverse=True)
        for r in sg["relations"]:
            s, o = sg["objects"][r["subject"]], sg["objects"][r["object"]]
            assert r["subject"] != r["object"] and 1 <= r["predicate"] < NUM_REL and r["name"] == REL[r["predicate"]]
            assert (r["subject_name"], r["object_name"]) == (s["name"], o["name"])
            assert len(r["predicate_scores"]) == NUM_REL and abs(sum(r["predicate_scores"]) - 1) < 1e-5
            assert r["predicate_score"] == max(r["predicate_scores"][1:])
            assert r["score"] == pytest.approx(r["predicate_score"] * s["score"] * o["score"], rel=1e-6)
        out[name] = sg
    # same model input, the big image's boxes are the small one's times two
    big, small = out["big.png"], out["small.png"]
    assert [o["label"] for o in big["objects"]] == [o["label"] for o in small["objects"]]
    np.testing.assert_allclose([o["box"] for o in big["objects"]],
                               2 * np.asarray([o["box"] for o in small["objects"]]), rtol=0, atol=0.02)
    assert [(r["subject"], r["object"], r["predicate"]) for r in big["relations"]] == \
           [(r["subject"], r["object"], r["predicate"]) for r in small["relations"]]


def test_given_boxes_come_back_in_each_images_own_pixels(checkpoint, two_sizes, tmp_path):
    small_boxes = [[4.25, 3.5, 40.0, 30.75], [30.5, 10.0, 90.0, 60.0], [10.0, 20.0, 50.5, 63.0]]
    boxes = {"small.png": {"boxes": small_boxes}, "big.png": [[2 * v for v in b] for b in small_boxes]}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    assert infer("--checkpoint", checkpoint, "--images", two_sizes / "big.png", two_sizes / "small.png",
                 "--boxes", tmp_path / "boxes.json", "--output", tmp_path / "out", "--topk", 0, "--no-png") == 0
    index = load(tmp_path / "out" / "index.json")
    assert index["mode"] == "sgcls" and index["boxes_file"] == str(tmp_path / "boxes.json")
    sg = {os.path.basename(r["image"]): load(tmp_path / "out" / r["json"]) for r in index["images"]}
    assert [o["box"] for o in sg["small.png"]["objects"]] == small_boxes
    assert [o["box"] for o in sg["big.png"]["objects"]] == boxes["big.png"]
    assert len(sg["small.png"]["relations"]) == 6  # --topk 0: every ordered pair
    rel = lambda g: [(r["subject"], r["object"], r["predicate"]) for r in g["relations"]]  # noqa: E731
    assert rel(sg["small.png"]) == rel(sg["big.png"])
    np.testing.assert_allclose([r["score"] for r in sg["small.png"]["relations"]],
                               [r["score"] for r in sg["big.png"]["relations"]], rtol=1e-4)


def test_predcls_returns_exactly_the_given_boxes_and_labels(checkpoint, two_sizes, tmp_path):
    boxes = [[0.0, 0.0, 191.0, 127.0], [10.5, 20.25, 60.0, 90.0], [100.0, 5.0, 180.0, 70.0], [50, 50, 52, 53]]
    labels = ["person", 2, "hat", "tree"]
    (tmp_path / "boxes.json").write_text(json.dumps({"big.png": {"boxes": boxes, "labels": labels}}))
    assert infer("--checkpoint", checkpoint, "--images", two_sizes, "--boxes", tmp_path / "boxes.json",
                 "--output", tmp_path / "out") == 0
    index = load(tmp_path / "out" / "index.json")
    assert index["mode"] == "predcls" and index["trained_mode"] == "sgdet"
    assert [os.path.basename(s["image"]) for s in index["skipped"]] == ["small.png"]
    assert "no entry for this image in the --boxes file" in index["skipped"][0]["reason"]
    (rec,) = index["images"]
    sg = load(tmp_path / "out" / rec["json"])
    assert [o["box"] for o in sg["objects"]] == [[float(v) for v in b] for b in boxes]
    assert [o["label"] for o in sg["objects"]] == [1, 2, 3, 6]
    assert [o["name"] for o in sg["objects"]] == ["person", "horse", "hat", "tree"]
    assert all(o["score"] == 1.0 for o in sg["objects"]) and len(sg["relations"]) == 12


def test_corrupt_and_too_large_images_are_skipped_and_the_run_goes_on(checkpoint, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    picture(96, 64).save(folder / "a_good.jpg")
    (folder / "b_garbage.jpg").write_bytes(b"this is not a picture at all")
    picture(96, 64).save(folder / "c_truncated.png")
    data = (folder / "c_truncated.png").read_bytes()
    (folder / "c_truncated.png").write_bytes(data[:len(data) // 2])
    picture(150, 100).save(folder / "d_large.png")  # 15000 pixels
    (folder / "notes.txt").write_text("not listed: no image extension")
    code = infer("--checkpoint", checkpoint, "--images", folder, "--output", tmp_path / "out", "--batch-size", 3,
                 "INPUT.MAX_INPUT_PIXELS", 10000)
    assert code == 0
    index = load(tmp_path / "out" / "index.json")
    assert [os.path.basename(r["image"]) for r in index["images"]] == ["a_good.jpg"]
    reasons = {os.path.basename(s["image"]): s["reason"] for s in index["skipped"]}
    assert set(reasons) == {"b_garbage.jpg", "c_truncated.png", "d_large.png"} and index["num_images"] == 4
    assert "not an image Pillow can read" in reasons["b_garbage.jpg"]
    assert "corrupt or unreadable image" in reasons["c_truncated.png"]
    assert "150x100 = 15000 pixels, more than INPUT.MAX_INPUT_PIXELS (10000)" in reasons["d_large.png"]
    logged = capsys.readouterr().out
    assert "skipping" in logged and "b_garbage.jpg" in logged and "d_large.png" in logged
    assert index["config"]["INPUT"]["MAX_INPUT_PIXELS"] == 10000


def test_tool_errors_name_the_problem(checkpoint, tmp_path, capsys):
    assert infer("--checkpoint", checkpoint, "--images", tmp_path / "missing", "--output", tmp_path / "o") == 2
    assert "no such file or folder" in capsys.readouterr().out
    assert infer("--checkpoint", tmp_path / "nope.pth", "--images", tmp_path, "--output", tmp_path / "o") == 2
    picture(96, 64).save(tmp_path / "x.png")
    assert infer("--checkpoint", tmp_path / "nope.pth", "--images", tmp_path / "x.png", "--output", tmp_path / "o") == 2
    assert "checkpoint not found" in capsys.readouterr().out
    assert infer("--checkpoint", checkpoint, "--images", tmp_path / "x.png", "--output", tmp_path / "o",
                 "MODEL.NO_SUCH_KEY", 1) == 2
    assert "unknown config key MODEL.NO_SUCH_KEY" in capsys.readouterr().out


def test_exif_orientation_applied(tmp_path):
    img = picture(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert open_image(str(tmp_path / "rot.jpg")).size == (20, 40)
    with pytest.raises(ImageRefused, match="40x20 = 800 pixels"):
        open_image(str(tmp_path / "rot.jpg"), max_pixels=799)


def test_boxes_file_checks_and_matching(tmp_path):
    def write(obj):
        (tmp_path / "b.json").write_text(json.dumps(obj))
        return str(tmp_path / "b.json")

    with pytest.raises(BoxesFileError, match="unknown object class 'dragon'"):
        read_boxes_file(write({"a.png": {"boxes": [[0, 0, 5, 5]], "labels": ["dragon"]}}), OBJ)
    with pytest.raises(BoxesFileError, match=r"label 0 is neither a class name nor an index in 1\.\.6"):
        read_boxes_file(write({"a.png": {"boxes": [[0, 0, 5, 5]], "labels": [0]}}), OBJ)
    with pytest.raises(BoxesFileError, match=r"1 of 2 entries have labels"):
        read_boxes_file(write({"a.png": {"boxes": [[0, 0, 5, 5]], "labels": [1]}, "b.png": [[0, 0, 5, 5]]}), OBJ)
    with pytest.raises(BoxesFileError, match=r"box 1 \[3\.0, 0\.0, 2\.0, 5\.0\] is not a finite xyxy box"):
        read_boxes_file(write({"a.png": [[0, 0, 5, 5], [3, 0, 2, 5]]}), OBJ)
    with pytest.raises(BoxesFileError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        read_boxes_file(str(tmp_path / "bad.json"), OBJ)
    for sub in ("x", "y"):
        (tmp_path / "imgs" / sub).mkdir(parents=True)
        picture(30, 20).save(tmp_path / "imgs" / sub / "p.png")
    picture(30, 20).save(tmp_path / "imgs" / "q.png")
    entries = list_images([str(tmp_path / "imgs")])
    assert [e.key for e in entries] == ["q.png", "x/p.png", "y/p.png"]
    given = read_boxes_file(write({"x/p.png": [[0, 0, 5, 5]], "p.png": [[1, 1, 5, 5]], "q.png": [[0, 0, 40, 5]]}),
                            OBJ)
    matched = match_boxes(entries, given)
    assert matched[1].key == "x/p.png" and "matches 2 images" in matched[2]
    from maskrcnn_benchmark.engine.image_input import check_boxes
    assert "lies outside the 30x20 image" in check_boxes(matched[0], 30, 20)


def test_overrides_right_after_images_are_not_taken_for_images(tmp_path):
    args = TOOL.parse_args(["--checkpoint", "m.pth", "--images", "a.jpg", "photos", "MODEL.DEVICE", "cpu",
                            "INPUT.MAX_INPUT_PIXELS", "5"])
    assert args.images == ["a.jpg", "photos"] and args.opts == ["MODEL.DEVICE", "cpu", "INPUT.MAX_INPUT_PIXELS", "5"]


@pytest.mark.parametrize("error, per_image", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("Calculated padded input size per channel: (1 x 1). Kernel size can't be greater"), True),
    (RuntimeError("CUDA error: device-side assert triggered"), False),
    (torch.AcceleratorError("CUDA error: an illegal memory access was encountered"), False),
    (TypeError("unsupported operand type(s)"), False)])
def test_only_per_image_failures_are_skipped(checkpoint, tmp_path, error, per_image):
    """A failed forward pass skips its image only when it is that image's problem; a CUDA error
    (the device is gone for every later image) or a bug stops the run, the index saying so."""
    from maskrcnn_benchmark.engine.sgg_inference import SceneGraphPredictor, run_on_images

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        picture(96, 64).save(folder / name)
    predictor = SceneGraphPredictor.from_checkpoint(str(checkpoint), device="cpu")
    real, calls = predictor.predict, []

    def predict(images, targets=None):
        calls.append(len(images))
        if len(calls) == 1:
            raise error
        return real(images, targets)
    predictor.predict = predict
    out = tmp_path / "out"
    entries = list_images([str(folder)])
    if per_image:
        index = run_on_images(predictor, entries, str(out), progress=False)
        assert [os.path.basename(s["image"]) for s in index["skipped"]] == ["a.png"]
        assert type(error).__name__ in index["skipped"][0]["reason"]
        assert [os.path.basename(r["image"]) for r in index["images"]] == ["b.png"]
    else:
        with pytest.raises(type(error)):
            run_on_images(predictor, entries, str(out), progress=False)
        index = load(out / "index.json")
        assert not index["completed"] and not index["skipped"] and calls == [1]
