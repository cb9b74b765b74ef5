"""tools/sgg_eval.py on a tiny dataset written in VG150's file format."""
import importlib.util
import json
import os

import h5py
import numpy as np
import pytest

from maskrcnn_benchmark.data.datasets.evaluation.vg import save_predictions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location("sgg_eval_tool",
                                                  os.path.join(ROOT, "tools", "sgg_eval.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# per image: (split, boxes cx cy w h on the 1024 scale, labels, relations (s, o, predicate))
_IMAGES = [
    (0, [[100, 100, 50, 50], [300, 100, 60, 40]], [1, 2], [[0, 1, 1]]),  # val (first train image)
    (0, [[100, 100, 50, 50], [300, 100, 60, 40]], [1, 2], [[0, 1, 1]]),  # train: (a, b, on)
    (2, [[100, 100, 50, 50], [300, 100, 60, 40], [500, 300, 80, 80]], [1, 2, 3],
     [[0, 1, 1], [1, 2, 2], [0, 1, 1]]),  # test: a duplicate pair
    (2, [[200, 200, 40, 40], [400, 200, 40, 40]], [2, 1], [[1, 0, 2]]),  # test
]


def _write_dataset(root):
    d = os.path.join(root, "synthvg")
    os.makedirs(os.path.join(d, "VG_100K"))
    labels, boxes, rels, preds, fb, lb, fr, lr = [], [], [], [], [], [], [], []
    for _, b, lab, rel in _IMAGES:
        fb.append(len(labels))
        fr.append(len(rels))
        rels += [[len(labels) + s, len(labels) + o] for s, o, _ in rel]
        preds += [p for _, _, p in rel]
        labels += lab
        boxes += b
        lb.append(len(labels) - 1)
        lr.append(len(rels) - 1)
    with h5py.File(os.path.join(d, "VG-SGG-with-attri.h5"), "w") as f:
        f["split"] = np.array([s for s, *_ in _IMAGES], np.int32)
        for k, v in (("img_to_first_box", fb), ("img_to_last_box", lb),
                     ("img_to_first_rel", fr), ("img_to_last_rel", lr)):
            f[k] = np.array(v, np.int32)
        f["labels"] = np.array(labels, np.int64)[:, None]
        f["boxes_1024"] = np.array(boxes, np.int32)
        f["boxes_512"] = np.array(boxes, np.int32) // 2
        f["relationships"] = np.array(rels, np.int32)
        f["predicates"] = np.array(preds, np.int64)[:, None]
        f["attributes"] = np.zeros((len(labels), 10), np.int64)
    with open(os.path.join(d, "VG-SGG-dicts-with-attri.json"), "w") as f:
        json.dump({"label_to_idx": {"a": 1, "b": 2, "c": 3},
                   "predicate_to_idx": {"on": 1, "has": 2}}, f)
    with open(os.path.join(d, "image_data.json"), "w") as f:
        json.dump([{"width": 1024, "height": 768, "image_id": 100 + i}
                   for i in range(len(_IMAGES))], f)


def _perfect_predictions(root):
    from maskrcnn_benchmark.config import load_config
    from maskrcnn_benchmark.data.build import build_dataset
    cfg = load_config(None, ["DATASETS.DATA_DIR", root, "DATASETS.TEST", "('synthvg_test',)"])
    ds = build_dataset(cfg, "test", is_train=False)
    preds = []
    for i in range(len(ds)):
        gt = ds.get_groundtruth(i)
        scores = np.zeros((len(gt["relations"]), 3), np.float32)
        scores[np.arange(len(scores)), gt["relations"][:, 2]] = 1
        preds.append({"boxes": gt["boxes"], "labels": gt["labels"],
                      "scores": np.ones(len(gt["labels"]), np.float32),
                      "rel_pairs": gt["relations"][:, :2], "rel_scores": scores})
    return preds, [ds.get_img_info(i)["image_id"] for i in range(len(ds))]


@pytest.mark.parametrize("mode", ["predcls", "sgdet"])
def test_reevaluates_saved_predictions(tmp_path, mode):
    root = str(tmp_path / "datasets")
    _write_dataset(root)
    preds, ids = _perfect_predictions(root)
    path = str(tmp_path / "run" / "predictions.pt")
    save_predictions(path, preds, mode=mode, dataset="synthvg_test", num_predicates=3,
                     image_ids=ids, checkpoint="model_final.pth")
    opts = ["DATASETS.DATA_DIR", root, "DATASETS.NUM_VAL_IM", "1"]
    assert _tool().main(["--predictions", path, "--dataset", "synthvg_test"] + opts) == 0
    res = json.load(open(tmp_path / "run" / "sgg_eval" / "results.json"))
    assert res["mode"] == mode and res["checkpoint"] == "model_final.pth"
    assert ("A@20" in res["metrics"]) == (mode == "predcls")
    if mode == "sgdet":
        assert res["detection"]["mAP@0.5"] == pytest.approx(1.0)
    assert res["dataset"] == "synthvg_test" and res["counts"]["evaluated"] == 2
    # the duplicate pair in image 0 predicts one predicate: (0,1,on) twice hit, (1,2,has) hit
    assert res["metrics"]["R@20"] == 1.0 and res["metrics"]["mR@100"] == 1.0
    # zero-shot (never in train): (b, c, has) in image 0 and (a, b, has) in image 1
    assert res["metrics"]["zR@100"] == 1.0 and res["counts"]["zeroshot_relations"] == 2
    assert (tmp_path / "run" / "sgg_eval" / "results.txt").read_text().count("SGG eval:") >= 5
    dropped = str(tmp_path / "dropped")
    assert _tool().main(["--predictions", path, "--dataset", "synthvg_test", "--output-dir",
                         dropped, "--no-zeroshot", "TEST.RELATION.MAX_BOXES", "2"] + opts) == 0
    res = json.load(open(os.path.join(dropped, "results.json")))
    assert res["counts"]["dropped_max_boxes"] == 1 and "zR@100" not in res["metrics"]


def test_reports_a_dataset_mismatch(tmp_path, caplog):
    root = str(tmp_path / "datasets")
    _write_dataset(root)
    preds, ids = _perfect_predictions(root)
    path = str(tmp_path / "predictions.pt")
    save_predictions(path, preds, mode="predcls", dataset="synthvg_test", num_predicates=3,
                     image_ids=[i + 1 for i in ids])
    rc = _tool().main(["--predictions", path, "--dataset", "synthvg_test", "--no-zeroshot",
                       "DATASETS.DATA_DIR", root])
    assert rc == 2 and "made on another dataset" in caplog.text
    rc = _tool().main(["--predictions", str(tmp_path / "none.pt"), "--dataset", "synthvg_test"])
    assert rc == 2 and "predictions file not found" in caplog.text
    with pytest.raises(SystemExit):
        _tool().main(["--dataset", "synthvg_test"])
