"""Predictions file round trip and errors; results JSON; the text table; predicate group files."""
import json

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.data.datasets.evaluation.vg import PREDICTIONS_FORMAT, \
    VG150_GROUPS_FILE, evaluate_relations, format_table, load_predicate_groups, \
    load_predictions, save_predictions, save_results


def _preds(rng, n=3, p=5):
    out = []
    for i in range(n):
        nb, nr = int(rng.integers(0, 5)), int(rng.integers(0, 7)) if i else 0
        out.append({"boxes": rng.random((nb, 4)).astype(np.float32),
                    "labels": rng.integers(1, 9, nb), "scores": rng.random(nb).astype(np.float32),
                    "rel_pairs": rng.integers(0, max(nb, 1), (nr, 2)),
                    "rel_scores": rng.random((nr, p)).astype(np.float32)})
    return out


def test_predictions_round_trip(tmp_path):
    preds = _preds(np.random.default_rng(0))
    path = str(tmp_path / "out" / "predictions.pt")
    save_predictions(path, preds, mode="sgdet", dataset="synthvg_test", num_predicates=5,
                     indices=[4, 5, 6], image_ids=[10, 11, 12], checkpoint="model_final.pth",
                     meta={"TOPK_TRIPLETS": 100})
    raw = torch.load(path, weights_only=True)  # readable without our code
    assert raw["format"] == PREDICTIONS_FORMAT and raw["version"] == 2
    assert raw["num_top_pairs"].tolist() == raw["num_pairs"].tolist()  # no extra GT-pair rows
    loaded, info = load_predictions(path)
    assert info["mode"] == "sgdet" and info["indices"] == [4, 5, 6]
    assert info["image_ids"] == [10, 11, 12] and info["meta"] == {"TOPK_TRIPLETS": 100}
    assert info["checkpoint"] == "model_final.pth" and info["num_predicates"] == 5
    for a, b in zip(preds, loaded):
        for k in a:
            np.testing.assert_array_equal(np.asarray(a[k]).reshape(b[k].shape), b[k])
        assert b["rel_scores"].shape[1] == 5 and b["boxes"].dtype == np.float32


def test_num_top_pairs_round_trip_and_version_1_files(tmp_path):
    preds = _preds(np.random.default_rng(3), n=4)
    preds[2] = {**preds[2], "rel_pairs": np.array([[0, 1], [1, 0], [0, 2]]),
                "rel_scores": np.full((3, 5), 0.2, np.float32), "num_top_pairs": 1}
    path = str(tmp_path / "v2.pt")
    save_predictions(path, preds, mode="sgcls", dataset="x", num_predicates=5)
    assert torch.load(path, weights_only=True)["num_top_pairs"][2].item() == 1
    loaded, info = load_predictions(path)
    assert loaded[2]["num_top_pairs"] == 1 and len(loaded[2]["rel_pairs"]) == 3
    assert all("num_top_pairs" not in p for i, p in enumerate(loaded) if i != 2)
    # a version 1 file (written before num_top_pairs existed): every pair is a top pair
    doc = torch.load(path, weights_only=True)
    del doc["num_top_pairs"]
    doc["version"] = 1
    torch.save(doc, str(tmp_path / "v1.pt"))
    old, info = load_predictions(str(tmp_path / "v1.pt"))
    assert info["version"] == 1 and all("num_top_pairs" not in p for p in old)
    np.testing.assert_array_equal(old[2]["rel_pairs"], loaded[2]["rel_pairs"])
    with pytest.raises(ValueError, match="num_top_pairs 4 is not in 1..3"):
        save_predictions(str(tmp_path / "bad.pt"), [{**preds[2], "num_top_pairs": 4}],
                         mode="sgcls", dataset="x", num_predicates=5)


def test_predictions_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="predictions file not found"):
        load_predictions(str(tmp_path / "missing.pt"))
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="broken.pt.*truncated"):
        load_predictions(str(bad))
    other = tmp_path / "other.pt"
    torch.save({"a": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="is not a predictions file"):
        load_predictions(str(other))
    save_predictions(str(other), _preds(np.random.default_rng(1)), mode="predcls", dataset="x",
                     num_predicates=5)
    doc = torch.load(other, weights_only=True)
    doc["version"] = 99
    torch.save(doc, other)
    with pytest.raises(ValueError, match="version 99"):
        load_predictions(str(other))
    with pytest.raises(ValueError, match="must have 7 columns"):
        save_predictions(str(tmp_path / "p.pt"), _preds(np.random.default_rng(2)),
                         mode="sgdet", dataset="x", num_predicates=7)


def _results():
    gt = {"boxes": np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32),
          "labels": np.array([1, 2]), "relations": np.array([[0, 1, 1]])}
    pred = {**gt, "scores": np.ones(2, np.float32), "rel_pairs": np.array([[0, 1]]),
            "rel_scores": np.array([[0.1, 0.9, 0.0]], np.float32)}
    return evaluate_relations([gt], [pred], "predcls", 3, predicate_names=["bg", "on", "has"],
                              zeroshot_triplets=np.zeros((0, 3)))


def test_results_json_and_table(tmp_path):
    res = _results()
    doc = save_results(res, str(tmp_path / "results.json"), dataset="d", checkpoint="c.pth")
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == doc and on_disk["dataset"] == "d" and on_disk["format_version"] == 1
    assert on_disk["metrics"]["R@100"] == 1.0 and on_disk["metrics"]["zR@100"] is None
    assert on_disk["counts"]["absent_predicates"] == ["has"]
    table = format_table(res)
    assert "SGG eval:   R @ 20: 1.0000;   R @ 50: 1.0000;   R @ 100: 1.0000;  for " \
           "mode=predcls, type=Recall(Main)." in table
    assert "(on:1.0000) (has:absent)" in table and "  A @ 20: 1.0000" in table
    assert "zR @ 20:   n/a" in table and "absent from the evaluated GT (count 0 in mR, as SGB): " \
           "1: has" in table


def test_predicate_groups_file(tmp_path):
    vg = json.load(open(VG150_GROUPS_FILE))
    assert [len(vg[g]["ids"]) for g in ("head", "body", "tail")] == [7, 21, 22]
    path = tmp_path / "predicate_groups.json"
    path.write_text(json.dumps({"description": "x", "head": {"ids": [1, 2]},
                                "tail": {"ids": [3], "names": ["c"]}}))
    assert load_predicate_groups(str(path), ["bg", "a", "b", "c"]) == {"head": [1, 2],
                                                                       "tail": [3]}
    with pytest.raises(ValueError, match="names do not match"):
        load_predicate_groups(str(path), ["bg", "a", "b", "z"])
    with pytest.raises(ValueError, match=r"ids \[3\] outside 1..2"):
        load_predicate_groups(str(path), ["bg", "a", "b"])
    with pytest.raises(ValueError, match="cannot read predicate groups file"):
        load_predicate_groups(str(tmp_path / "none.json"))
