"""tools/convert_to_vg150.py: a JSON dataset -> VG150 files; SynthVG exported and converted back."""
import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image

from maskrcnn_benchmark.config import ConfigError, load_config
from maskrcnn_benchmark.data import DatasetError, VGDataset
from maskrcnn_benchmark.data.build import dataset_args
from maskrcnn_benchmark.data.convert import convert_dataset
from maskrcnn_benchmark.data.datasets.visual_genome import BOX_SCALE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = {"img_dir": "VG_100K", "roidb_file": "VG-SGG-with-attri.h5",
         "dict_file": "VG-SGG-dicts-with-attri.json", "image_file": "image_data.json"}


def files(folder):
    return {k: os.path.join(folder, v) for k, v in FILES.items()}


def load_tool():
    spec = importlib.util.spec_from_file_location("convert_tool", os.path.join(ROOT, "tools", "convert_to_vg150.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export_json(folder, path):
    """A VG150-format dataset as the converter's JSON (boxes in pixels, names, splits, ids)."""
    rows = []
    for split in ("train", "test"):
        ds = VGDataset(split, num_val_im=0, filter_empty_rels=False, filter_duplicate_rels=False, **files(folder))
        for i in range(len(ds)):
            boxes, labels, rels = ds.raw_annotations(i)
            info = ds.get_img_info(i)
            scale = max(info["width"], info["height"]) / BOX_SCALE
            rows.append((int(ds.image_index[i]), {
                "file": f"{info['image_id']}.jpg", "width": info["width"], "height": info["height"],
                "image_id": info["image_id"], "split": split,
                "objects": [{"box": (b * scale).tolist(), "name": ds.ind_to_classes[c]}
                            for b, c in zip(boxes.astype(np.float64), labels)],
                "relations": [{"subject": int(s), "object": int(o), "predicate": ds.ind_to_predicates[p]}
                              for s, o, p in rels]}))
    with open(path, "w") as f:
        json.dump({"images": [r for _, r in sorted(rows, key=lambda r: r[0])]}, f)


def test_synthvg_round_trip_gives_the_same_dataset(synthvg_dir, tmp_path):
    data_dir = synthvg_dir[0]
    src = os.path.join(data_dir, "synthvg")
    export_json(src, tmp_path / "synthvg.json")
    out = str(tmp_path / "data" / "again")
    tool = load_tool()
    assert tool.main(["--json", str(tmp_path / "synthvg.json"), "--images", os.path.join(src, "VG_100K"),
                      "--out", out, "--dicts", os.path.join(src, FILES["dict_file"]), "--symlink",
                      "--config-dir", str(tmp_path / "cfg")]) == 0
    for split in ("train", "val", "test"):  # SGB's splits and filters, with and without them
        for kw in ({"num_val_im": 10}, {"num_val_im": 0, "filter_empty_rels": False, "filter_duplicate_rels": False}):
            if split == "val" and kw["num_val_im"] == 0:
                continue
            a, b = VGDataset(split, **kw, **files(src)), VGDataset(split, **kw, **files(out))
            assert len(a) == len(b) > 0
            for i in range(len(a)):
                assert a.get_img_info(i) == b.get_img_info(i)
                ra, rb = a.raw_annotations(i), b.raw_annotations(i)
                for x, y in zip(ra, rb):
                    np.testing.assert_array_equal(x, y)
            assert a.ind_to_classes == b.ind_to_classes and a.ind_to_predicates == b.ind_to_predicates
    for name in ("predicate_groups.json",):
        with open(os.path.join(src, name)) as f, open(os.path.join(out, name)) as g:
            ga, gb = json.load(f), json.load(g)
        assert all(ga[k] == gb[k] for k in ("head", "body", "tail"))
    # the written configs name the dataset, its folder and class counts, and load
    cfg = load_config(str(tmp_path / "cfg" / "motifs_align.yaml"))
    assert cfg.DATASETS.TRAIN == ("again_train",) and cfg.DATASETS.DATA_DIR == str(tmp_path / "data")
    assert cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES == len(a.ind_to_classes)
    assert cfg.MODEL.ROI_RELATION_HEAD.NUM_CLASSES == len(a.ind_to_predicates)
    assert cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED and cfg.OUTPUT_DIR == "output/again_motifs_align_predcls"
    assert dataset_args(cfg, "test")[1]["roidb_file"] == os.path.join(out, FILES["roidb_file"])
    det = load_config(str(tmp_path / "cfg" / "detector_VGG16.yaml"))
    assert det.MODEL.ROI_BOX_HEAD.NUM_CLASSES == len(a.ind_to_classes) and not det.MODEL.RELATION_ON
    with pytest.raises(ConfigError, match="already holds"):  # nothing is overwritten
        tool.main(["--json", str(tmp_path / "synthvg.json"), "--images", src, "--out", str(tmp_path / "new"),
                   "--config-dir", str(tmp_path / "cfg")])


def small_dataset(tmp_path, **image_fields):
    (tmp_path / "img").mkdir(exist_ok=True)
    Image.new("RGB", (40, 30)).save(tmp_path / "img" / "a.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "img" / "b.jpg")
    images = [{"file": "a.png", "width": 40, "height": 30,
               "objects": [{"box": [0, 0, 10, 10], "name": "man"}, {"box": [5, 5, 45, 30], "name": "hat"},
                           {"box": [1, 1, 3, 3], "name": "man"}],
               "relations": [{"subject": 0, "object": 1, "predicate": "wearing"},
                             {"subject": 0, "object": 1, "predicate": "has"}]},
              {"file": "b.jpg", "objects": [{"box": [2, 2, 8, 8], "name": "dog"}], "relations": []}]
    images[0].update(image_fields)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"images": images}))
    return str(path), str(tmp_path / "img")


def test_vocabulary_splits_duplicates_and_clipping(tmp_path):
    path, img = small_dataset(tmp_path)
    out = str(tmp_path / "mine")
    s = convert_dataset(path, img, out, test_fraction=0.5, seed=1)
    assert s["classes"] == ["dog", "hat", "man"] and s["predicates"] == ["has", "wearing"]
    assert s["clipped_boxes"] == 1 and s["train"] + s["test"] == 2
    splits = [VGDataset(sp, num_val_im=0, filter_empty_rels=False, **files(out)) for sp in ("train", "test")]
    assert sorted(len(d) for d in splits) == [1, 1]
    a = next(d for d in splits if d.get_img_info(0)["width"] == 40)
    gt = a.get_groundtruth(0)  # duplicate relations kept, the overhanging box clipped
    assert gt["relations"].tolist() == [[0, 1, 2], [0, 1, 1]] and gt["labels"].tolist() == [3, 2, 3]
    assert gt["boxes"][1].tolist() == [5, 5, 39, 29]
    assert os.path.isfile(os.path.join(out, "predicate_groups.json"))
    again = convert_dataset(path, img, str(tmp_path / "again"), test_fraction=0.5, seed=1)
    assert again["test"] == s["test"]  # the seeded draw repeats
    with pytest.raises(DatasetError, match="not empty"):
        convert_dataset(path, img, out, test_fraction=0.5)


@pytest.mark.parametrize("fields,match", [
    ({"objects": [{"box": [0, 0, 9, 9], "name": "man"}, {"box": [50, 0, 60, 10], "name": "hat"}]},
     r"objects\[1\] box .* outside the 40x30 image"),
    ({"width": 41}, "is 40x30 but the JSON file says 41x30"),
    ({"relations": [{"subject": 0, "object": 0, "predicate": "has"}]}, "two different object indices"),
    ({"split": "holdout"}, "split must be train, val or test"),
    ({"file": "missing.jpg"}, "image not found"),
])
def test_bad_input_is_one_clear_error(tmp_path, fields, match):
    path, img = small_dataset(tmp_path, **{"split": "train", **fields})
    with pytest.raises(DatasetError, match=match):
        convert_dataset(path, img, str(tmp_path / "out"), test_fraction=0.5)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_fixed_vocabulary_lists_unknown_names_and_missing_splits_are_refused(tmp_path):
    path, img = small_dataset(tmp_path)
    dicts = tmp_path / "dicts.json"
    dicts.write_text(json.dumps({"label_to_idx": {"man": 1, "dog": 2}, "predicate_to_idx": {"has": 1, "wearing": 2}}))
    with pytest.raises(DatasetError, match=r"1 object classes are not in .*dicts.json: 'hat'"):
        convert_dataset(path, img, str(tmp_path / "out"), dicts_file=str(dicts), test_fraction=0.5)
    with pytest.raises(DatasetError, match="2 images have no \"split\""):
        convert_dataset(path, img, str(tmp_path / "out"))
    path, img = small_dataset(tmp_path, split="val")
    s = convert_dataset(path, img, str(tmp_path / "val"), test_fraction=0.0)
    assert s["val"] == 1 and s["num_val_im"] == 1
    val = VGDataset("val", num_val_im=s["num_val_im"], **files(str(tmp_path / "val")))
    assert [val.get_img_info(i)["width"] for i in range(len(val))] == [40]
