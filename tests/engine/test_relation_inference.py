"""Relation-stage evaluation glue: original-pixel conversion, detector loading, a full evaluation."""
import numpy as np
import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from maskrcnn_benchmark.config import get_cfg
from maskrcnn_benchmark.data.datasets.evaluation.vg import load_predictions
from maskrcnn_benchmark.engine.relation_inference import (evaluate_relation_model, load_pretrained_detector,
                                                          relation_summary, relation_to_original, run_checkpoint)
from maskrcnn_benchmark.modeling.detector import build_detection_model, build_scene_graph_model
from maskrcnn_benchmark.utils.checkpoint import CheckpointError, Checkpointer


def tiny_cfg():
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RELATION_ON = True
    cfg.MODEL.BACKBONE.WIDTH_DIVISOR = 16
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 7
    cfg.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 16
    h = cfg.MODEL.ROI_RELATION_HEAD
    h.NUM_CLASSES = 5
    h.EMBED_DIM, h.CONTEXT_HIDDEN_DIM, h.CONTEXT_POOLING_DIM, h.POS_EMBED_DIM = 8, 12, 20, 10
    cfg.SOLVER.AMP = False
    cfg.OUTPUT_DIR = ""
    return cfg


class FakeDataset:
    """Two images, resized to half their original size."""

    ind_to_classes = ["__background__"] + [f"c{i}" for i in range(1, 7)]
    ind_to_predicates = ["__background__"] + [f"p{i}" for i in range(1, 5)]

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for labels in ([1, 2, 3, 4], [5, 6, 1]):  # every (subject, object) class pair distinct
            n = len(labels)
            xy = torch.rand(n, 2, generator=g) * 40
            boxes = torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=g) * 20], 1)
            rels = torch.tensor([[i, (i + 1) % n, 1 + i % 4] for i in range(n)])
            self.items.append((boxes, torch.tensor(labels), rels))

    def __len__(self):
        return len(self.items)

    def get_img_info(self, i):
        return {"height": 128, "width": 192, "image_id": 100 + i}

    def get_groundtruth(self, i):
        boxes, labels, rels = self.items[i]
        return {"boxes": (boxes * 2).numpy().astype(np.float32), "labels": labels.numpy(),
                "relations": rels.numpy()}

    def batch(self, idx):
        images = ImageList(torch.randn(len(idx), 3, 64, 96), [(64, 96)] * len(idx))
        targets = [{"boxes": self.items[i][0], "labels": self.items[i][1],
                    "relation_tuples": self.items[i][2]} for i in idx]
        return images, targets, tuple(idx)


class FakeLoader:
    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        yield self.dataset.batch([0, 1])


def test_relation_to_original_rescales_boxes_and_casts():
    pred = {"boxes": torch.tensor([[10., 20., 30., 40.]]), "labels": torch.tensor([3]),
            "scores": torch.tensor([0.5]), "rel_pairs": torch.zeros(0, 2, dtype=torch.int64),
            "rel_scores": torch.zeros(0, 5), "image_size": (50, 100)}
    out = relation_to_original(pred, (100, 300))
    assert np.allclose(out["boxes"], [[30., 40., 90., 80.]]) and out["boxes"].dtype == np.float32
    assert out["labels"].dtype == np.int64 and out["rel_pairs"].shape == (0, 2)
    assert out["rel_scores"].dtype == np.float32 and "num_top_pairs" not in out
    top = relation_to_original({**pred, "num_top_pairs": torch.tensor(0)}, (100, 300))
    assert top["num_top_pairs"] == 0 and type(top["num_top_pairs"]) is int


@pytest.mark.parametrize("select_best", [True, False])
def test_run_checkpoint_follows_select_best_val(tmp_path, select_best):
    cfg = get_cfg()
    cfg.SOLVER.SELECT_BEST_VAL = select_best
    ckpt = Checkpointer(torch.nn.Linear(2, 1), save_dir=str(tmp_path))
    assert run_checkpoint(cfg, ckpt) == ""  # nothing trained yet
    ckpt.save("model_0000002", iteration=2)
    assert run_checkpoint(cfg, ckpt) == str(tmp_path / "model_0000002.pth")  # no model_best yet
    ckpt.save("model_best", iteration=2, tag_last=False)
    ckpt.save("model_final", iteration=4)
    expected = "model_best.pth" if select_best else "model_final.pth"
    assert run_checkpoint(cfg, ckpt) == str(tmp_path / expected)


def test_relation_summary_flattens_and_drops_none():
    res = {"metrics": {"R@50": 0.5, "zR@50": None}, "groups": {"head": {"mR@100": 0.25}},
           "detection": {"mAP@0.5": 0.1}}
    assert relation_summary(res) == {"R@50": 0.5, "head/mR@100": 0.25, "det/mAP@0.5": 0.1}


def test_load_pretrained_detector_copies_box_head_and_reports_bad_files(tmp_path):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    detector = build_detection_model(cfg, load_pretrained=False)
    Checkpointer(detector, save_dir=str(tmp_path)).save("det", iteration=5)
    model = build_scene_graph_model(cfg)
    load_pretrained_detector(model, str(tmp_path / "det.pth"))
    assert torch.equal(model.detector.roi_heads.box_head.fc6.weight, detector.roi_heads.box_head.fc6.weight)
    assert torch.equal(model.relation_head.union_feature_extractor.feature_extractor.fc7.weight,
                       detector.roi_heads.box_head.fc7.weight)
    with pytest.raises(CheckpointError, match="PRETRAINED_DETECTOR_CKPT"):
        load_pretrained_detector(model, "")
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 9
    other = build_scene_graph_model(cfg)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_pretrained_detector(other, str(tmp_path / "det.pth"))


def test_evaluate_relation_model_end_to_end(tmp_path):
    """A model that knows the answer (through its frequency bias) must score R@20 = 1, which also
    needs the boxes back in original pixels (the GT is twice the resized size)."""
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model = build_scene_graph_model(cfg)
    ds = FakeDataset()
    pred = model.relation_head.predictor
    with torch.no_grad():
        pred.rel_compress.weight.zero_()
        pred.rel_compress.bias.zero_()
        pred.freq_bias.obj_baseline.weight.zero_()
        for boxes, labels, rels in ds.items:
            for s, o, p in rels.tolist():
                pred.freq_bias.obj_baseline.weight[labels[s] * 7 + labels[o], p] = 100.0
    results = evaluate_relation_model(cfg, model, FakeLoader(ds), torch.device("cpu"),
                                      output_folder=str(tmp_path), dataset_name="fake_test")
    assert results["mode"] == "predcls" and results["counts"]["evaluated"] == 2
    assert results["metrics"]["R@20"] == 1.0 and results["metrics"]["mR@20"] == 1.0
    preds, info = load_predictions(str(tmp_path / "predictions.pt"))
    assert info["mode"] == "predcls" and info["image_ids"] == [100, 101]
    assert np.allclose(preds[0]["boxes"], ds.get_groundtruth(0)["boxes"])  # back in original pixels
    assert (tmp_path / "results.json").is_file()


def test_detector_evaluation_gathers_only_what_the_evaluator_reads(monkeypatch):
    """Not the per-class logits [n, C] and boxes [n, C, 4] of every detection (6.4 GB for VG150
    test), and only to rank 0 (``comm.gather``)."""
    from maskrcnn_benchmark.engine import inference

    cfg = tiny_cfg()
    cfg.MODEL.RELATION_ON = False
    cfg.MODEL.ROI_HEADS.SCORE_THRESH = 0.0
    torch.manual_seed(0)
    model = build_detection_model(cfg, load_pretrained=False)
    gathered = []

    def gather(data, dst=0):
        gathered.append(data)
        return [data]
    monkeypatch.setattr(inference, "gather", gather)
    results = inference.evaluate_detector(model, FakeLoader(FakeDataset()), torch.device("cpu"))
    assert "mAP@0.5" in results
    (local,) = gathered
    assert sorted(local) == [0, 1]
    assert all(set(p) == {"boxes", "labels", "scores", "image_size"} for p in local.values())
    assert any(len(p["boxes"]) for p in local.values())
