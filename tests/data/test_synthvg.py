"""SynthVG: round trip through VGDataset, exact file format, determinism, the world's traits."""
import collections
import json
import os

import h5py
import numpy as np
import pytest
from PIL import Image

from maskrcnn_benchmark.data import VGDataset
from maskrcnn_benchmark.data.datasets.evaluation.vg import load_predicate_groups
from maskrcnn_benchmark.data.synthvg import CLASSES, GROUPS_FILE, PREDICATES, generate_synthvg
from maskrcnn_benchmark.data.synthvg.scenes import annotate, sample_scene
from maskrcnn_benchmark.data.synthvg.vocab import GENERIC, P_GENERIC
from maskrcnn_benchmark.data.synthvg.world import MAX_OBJECTS, POSE_PREDICATE
from maskrcnn_benchmark.data.synthvg.writer import FIRST_IMAGE_ID, make_image

SPLIT_CODE = {"train": 0, "test": 2}


def files_of(out):
    return {"img_dir": os.path.join(out, "VG_100K"),
            "roidb_file": os.path.join(out, "VG-SGG-with-attri.h5"),
            "dict_file": os.path.join(out, "VG-SGG-dicts-with-attri.json"),
            "image_file": os.path.join(out, "image_data.json")}


def test_round_trip_through_vgdataset(synthvg_dir, tmp_path):
    out = os.path.join(synthvg_dir[0], "synthvg")
    img_dir = str(tmp_path)
    n_train, n_test = synthvg_dir[1]["num_train"], synthvg_dir[1]["num_test"]
    total_boxes = 0
    for split, count, first in (("train", n_train, FIRST_IMAGE_ID),
                                ("test", n_test, FIRST_IMAGE_ID + n_train)):
        ds = VGDataset(split, num_val_im=0, filter_empty_rels=False,
                       filter_duplicate_rels=False, **files_of(out))
        by_id = {ds.get_img_info(i)["image_id"]: i for i in range(len(ds))}
        for i in range(count):
            rec = make_image((3, SPLIT_CODE[split], i, first + i, 128, img_dir))
            if len(rec["labels"]) == 0:
                assert rec["image_id"] not in by_id
                continue
            gt = ds.get_groundtruth(by_id[rec["image_id"]])
            assert gt["labels"].tolist() == rec["labels"].tolist()
            w, h = rec["width"], rec["height"]  # SGB clips ground truth to [0, W - 1] x [0, H - 1]
            drawn = np.minimum(rec["boxes"], np.array([w - 1, h - 1, w - 1, h - 1], np.float32))
            np.testing.assert_allclose(gt["boxes"], drawn, atol=128 / 1024 + 1e-4)
            assert gt["relations"].tolist() == rec["relations"].tolist()
            assert ds.get_img_info(by_id[rec["image_id"]])["width"] == rec["width"]
            total_boxes += len(rec["labels"])
    assert total_boxes == synthvg_dir[1]["num_objects"]
    with h5py.File(files_of(out)["roidb_file"]) as f:
        assert sorted(f.keys()) == sorted([
            "active_object_mask", "attributes", "boxes_1024", "boxes_512", "img_to_first_box",
            "img_to_first_rel", "img_to_last_box", "img_to_last_rel", "labels", "predicates",
            "relationships", "split"])
        assert f["labels"].shape == (total_boxes, 1) and f["attributes"].shape[1] == 10
        assert f["predicates"].shape[1] == 1 and f["relationships"].shape[1] == 2
        assert np.abs(f["boxes_512"][:].astype(int) * 2 - f["boxes_1024"][:]).max() <= 2
        assert f["split"][:].tolist() == [0] * n_train + [2] * n_test


def test_dicts_and_groups_describe_the_train_split(synthvg_dir):
    out = os.path.join(synthvg_dir[0], "synthvg")
    with open(os.path.join(out, "VG-SGG-dicts-with-attri.json")) as f:
        d = json.load(f)
    assert d["label_to_idx"] == {c: i + 1 for i, c in enumerate(CLASSES)}
    assert d["idx_to_predicate"] == {str(i + 1): p for i, p in enumerate(PREDICATES)}
    with h5py.File(os.path.join(out, "VG-SGG-with-attri.h5")) as f:
        train_rows = f["split"][:] == 0
        last = int(f["img_to_last_rel"][:][train_rows].max())
        labels_last = int(f["img_to_last_box"][:][train_rows].max())
        preds = np.bincount(f["predicates"][:last + 1, 0], minlength=len(PREDICATES) + 1)
        objs = np.bincount(f["labels"][:labels_last + 1, 0], minlength=len(CLASSES) + 1)
    assert d["predicate_count"] == {p: int(preds[i + 1]) for i, p in enumerate(PREDICATES)}
    assert d["object_count"] == {c: int(objs[i + 1]) for i, c in enumerate(CLASSES)}
    ds = VGDataset("test", **files_of(out))
    groups = load_predicate_groups(os.path.join(out, GROUPS_FILE), ds.ind_to_predicates)
    assert sorted(sum(groups.values(), [])) == list(range(1, len(PREDICATES) + 1))
    counts = d["predicate_count"]
    assert min(counts[PREDICATES[i - 1]] for i in groups["head"]) > \
        max(counts[PREDICATES[i - 1]] for i in groups["tail"])


def test_images_match_image_data(synthvg_dir):
    out = os.path.join(synthvg_dir[0], "synthvg")
    with open(os.path.join(out, "image_data.json")) as f:
        entries = json.load(f)
    assert len(entries) == 64 and entries[0]["image_id"] == FIRST_IMAGE_ID
    for e in entries[::7]:
        with Image.open(os.path.join(out, "VG_100K", f"{e['image_id']}.jpg")) as im:
            assert im.size == (e["width"], e["height"]) and max(im.size) == 128


def test_deterministic_for_a_seed(tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    for out, seed in ((a, 1), (b, 1), (c, 2)):
        generate_synthvg(out, seed=seed, num_train=6, num_test=2, image_size=96, workers=1)
    with h5py.File(os.path.join(a, "VG-SGG-with-attri.h5")) as fa, \
            h5py.File(os.path.join(b, "VG-SGG-with-attri.h5")) as fb, \
            h5py.File(os.path.join(c, "VG-SGG-with-attri.h5")) as fc:
        assert all(np.array_equal(fa[k][()], fb[k][()]) for k in fa.keys())
        assert not np.array_equal(fa["boxes_1024"][()], fc["boxes_1024"][()])
    name = f"{FIRST_IMAGE_ID + 3}.jpg"
    assert open(os.path.join(a, "VG_100K", name), "rb").read() == \
        open(os.path.join(b, "VG_100K", name), "rb").read()
    # the worker count does not change the output
    generate_synthvg(c, seed=1, num_train=6, num_test=2, image_size=96, workers=2)
    with open(os.path.join(a, "image_data.json")) as fa, \
            open(os.path.join(c, "image_data.json")) as fc:
        assert fa.read() == fc.read()


def test_world_is_long_tailed_and_covers_the_vocabulary():
    preds, classes, sizes = collections.Counter(), collections.Counter(), []
    for i in range(500):
        scene = sample_scene(np.random.default_rng([7, 0, i]), 256, 192)
        sizes.append(len(scene.objs))
        classes.update(o.cls for o in scene.objs)
        preds.update(p for _, _, p in annotate(scene))
        for s, o, p, _ in scene.rels:  # poses decide the specific support predicate
            if scene.objs[s].cls in ("man", "woman", "child") and p in POSE_PREDICATE.values() \
                    and scene.objs[o].cls in ("street", "grass"):
                assert POSE_PREDICATE[scene.objs[s].state["layout"]] == p
    assert set(classes) == set(CLASSES) and set(preds) == set(PREDICATES)
    assert max(sizes) <= MAX_OBJECTS and np.mean([3 <= n for n in sizes]) > 0.95
    total = sum(preds.values())
    ranked = [p for p, _ in preds.most_common()]
    assert ranked[0] == "on" and sum(preds[p] for p in ranked[:5]) > 0.5 * total
    assert sum(preds[p] < 0.02 * total for p in PREDICATES) >= 8  # a real tail
    assert all(preds[p] >= 0.002 * total for p in PREDICATES)  # every tail one present


def test_annotation_tables_are_consistent():
    assert list(CLASSES) == sorted(CLASSES) and len(CLASSES) == 30
    assert list(PREDICATES) == sorted(PREDICATES) and len(PREDICATES) == 25
    for specific, generic in GENERIC.items():
        assert specific in PREDICATES and generic in PREDICATES
        assert 0 < P_GENERIC[specific] < 0.5  # the cue keeps the specific predicate the mode


def test_cli_skips_up_to_date_and_rejects_bad_args(tmp_path, capsys):
    import runpy
    out = str(tmp_path / "cli")
    argv = ["make_synthvg.py", "--out", out, "--num-train", "4", "--num-test", "1",
            "--image-size", "96", "--workers", "1"]
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "make_synthvg.py")
    main = runpy.run_path(tool)["main"]
    assert main(argv[1:]) == 0
    stamp = os.path.getmtime(os.path.join(out, "VG-SGG-with-attri.h5"))
    assert main(argv[1:]) == 0 and "up to date" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(out, "VG-SGG-with-attri.h5")) == stamp
    assert main(["--out", out, "--image-size", "10"]) == 2
    with pytest.raises(SystemExit):
        main(["--num-train", "x"])


def test_check_vg_files_tool(synthvg_dir, tmp_path, capsys):
    import runpy
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "check_vg_files.py")
    main = runpy.run_path(tool)["main"]
    opts = ["DATASETS.TRAIN", "('synthvg_train',)", "DATASETS.VAL", "('synthvg_val',)",
            "DATASETS.TEST", "('synthvg_test',)", "DATASETS.NUM_VAL_IM", "8"]
    assert main(["DATASETS.DATA_DIR", synthvg_dir[0]] + opts) == 0
    out = capsys.readouterr().out
    assert "synthvg_val: 8 images" in out and out.strip().endswith("ok")
    assert main(["DATASETS.DATA_DIR", str(tmp_path)] + opts) == 1
    assert "not found" in capsys.readouterr().err


def test_nothing_floats_without_its_owner():
    for i in range(300):
        scene = sample_scene(np.random.default_rng([11, 0, i]), 256, 170)
        for j, o in enumerate(scene.objs):
            owner = o.state.get("owner")
            if owner is not None:
                assert scene.objs[owner].layer < o.layer
                assert any({s, t} == {owner, j} for s, t, _, _ in scene.rels)


def test_check_vg_files_decodes_every_image(synthvg_dir, tmp_path, capsys):
    import runpy
    import shutil
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "check_vg_files.py")
    main = runpy.run_path(tool)["main"]
    data = tmp_path / "data"
    shutil.copytree(synthvg_dir[0], data)
    images = sorted((data / "synthvg" / "VG_100K").iterdir())
    broken = images[len(images) // 2]
    content = broken.read_bytes()
    broken.write_bytes(content[:len(content) // 3])  # present, right size on disk, but truncated
    opts = ["DATASETS.DATA_DIR", str(data), "DATASETS.TRAIN", "('synthvg_train',)", "DATASETS.VAL",
            "('synthvg_val',)", "DATASETS.TEST", "('synthvg_test',)", "DATASETS.NUM_VAL_IM", "8"]
    assert main(["--workers", "2"] + opts) == 1
    err = capsys.readouterr().err
    assert "1 of" in err and "cannot be decoded" in err and broken.name in err and len(err.splitlines()) == 1
