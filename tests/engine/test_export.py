"""Self-contained relation checkpoints: metadata saved by the training engine, read back without
the dataset, the model rebuilt in any mode with the trained weights."""
import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import get_cfg, load_config
from maskrcnn_benchmark.engine.defaults import do_train
from maskrcnn_benchmark.engine.export import (attach_metadata, build_model_from_checkpoint, checkpoint_metadata,
                                              read_sgg_checkpoint)
from maskrcnn_benchmark.modeling.detector import build_detection_model, build_scene_graph_model
from maskrcnn_benchmark.utils.checkpoint import CheckpointError, Checkpointer

NUM_OBJ, NUM_REL = 7, 5
OBJ = ["__background__", "person", "horse", "hat", "table", "cup", "tree"]
REL = ["__background__", "on", "has", "near", "riding"]


def tiny_cfg(mode="sgdet"):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RELATION_ON = True
    cfg.MODEL.BACKBONE.WIDTH_DIVISOR = 16
    cfg.MODEL.RPN.PRE_NMS_TOP_N_TEST, cfg.MODEL.RPN.POST_NMS_TOP_N_TEST = 200, 50
    cfg.MODEL.ROI_HEADS.SCORE_THRESH = 0.0
    cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMG = 6
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = NUM_OBJ
    cfg.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 16
    h = cfg.MODEL.ROI_RELATION_HEAD
    h.USE_GT_BOX, h.USE_GT_OBJECT_LABEL = mode != "sgdet", mode == "predcls"
    h.NUM_CLASSES = NUM_REL
    h.EMBED_DIM, h.CONTEXT_HIDDEN_DIM, h.CONTEXT_POOLING_DIM, h.POS_EMBED_DIM = 8, 12, 20, 10
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 64, 128
    cfg.SOLVER.AMP = False
    cfg.DATASETS.DATA_DIR = "/nonexistent/datasets"  # inference must never look there
    cfg.OUTPUT_DIR = ""
    cfg.freeze()
    return cfg


def tiny_statistics(seed=0):
    g = torch.Generator().manual_seed(seed)
    fg = torch.randint(0, 20, (NUM_OBJ, NUM_OBJ, NUM_REL), generator=g)
    pred_dist = torch.log(fg / fg.sum(-1, keepdim=True).clamp(min=1) + 1e-3)
    return {"fg_matrix": fg, "pred_dist": pred_dist, "obj_classes": OBJ, "rel_classes": REL}


def save_tiny_checkpoint(path, mode="sgdet", seed=0):
    """A randomly initialised relation model saved as training saves it (Checkpointer + metadata);
    its frequency bias is moved away from pred_dist, as training would."""
    cfg = tiny_cfg(mode)
    torch.manual_seed(seed)
    stats = tiny_statistics(seed)
    model = build_scene_graph_model(cfg, statistics=stats)
    with torch.no_grad():
        model.relation_head.predictor.freq_bias.obj_baseline.weight.add_(0.5)
    Checkpointer(model, save_dir=str(path.parent), config=cfg,
                 extra=checkpoint_metadata(cfg, stats)).save(path.stem, iteration=7, tag_last=False)
    return model, cfg, stats


def test_checkpoint_metadata_content_and_checks():
    cfg, stats = tiny_cfg(), tiny_statistics()
    meta = checkpoint_metadata(cfg, stats)
    assert meta["sgg_metadata"]["obj_classes"] == OBJ and meta["sgg_metadata"]["rel_classes"] == REL
    assert meta["sgg_metadata"]["mode"] == "sgdet" and meta["sgg_metadata"]["version"] == 1
    assert meta["statistics"]["fg_matrix"].dtype == torch.int64
    assert torch.equal(meta["statistics"]["pred_dist"], stats["pred_dist"])
    assert load_config(None, []).dump() != meta["config"] and "NUM_CLASSES: 7" in meta["config"]
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        checkpoint_metadata(cfg, {**stats, "obj_classes": OBJ[:-1]})
    with pytest.raises(ValueError, match=r"fg_matrix has shape \(7, 7, 4\)"):
        checkpoint_metadata(cfg, {**stats, "fg_matrix": stats["fg_matrix"][..., :4]})


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x, targets):
        return {"loss": (self.lin(x) - targets).pow(2).mean()}


def test_do_train_writes_checkpoint_extra_into_every_checkpoint(tmp_path):
    cfg = load_config(None, ["OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", 4,
                             "SOLVER.CHECKPOINT_PERIOD", 2, "SOLVER.WARMUP_ITERS", 0, "SOLVER.STEPS", (3,)])
    extra = {"sgg_metadata": {"version": 1, "obj_classes": OBJ}, "statistics": {"fg_matrix": torch.ones(2, 2)}}
    data = [(torch.randn(4, 2), torch.randn(4, 1), (0,)) for _ in range(4)]
    do_train(cfg, Toy(), torch.device("cpu"), lambda start: iter(data[start:]), checkpoint_extra=extra)
    for name in ("model_0000002.pth", "model_final.pth"):
        saved = torch.load(tmp_path / name, weights_only=True)
        assert saved["sgg_metadata"] == extra["sgg_metadata"]
        assert torch.equal(saved["statistics"]["fg_matrix"], torch.ones(2, 2))


def test_model_rebuilt_from_checkpoint_alone_in_every_mode(tmp_path):
    path = tmp_path / "model_best.pth"
    trained, _, stats = save_tiny_checkpoint(path)
    ckpt = read_sgg_checkpoint(str(path))
    assert ckpt.obj_classes == OBJ and ckpt.rel_classes == REL and ckpt.trained_mode == "sgdet"
    assert ckpt.info["iteration"] == 7 and torch.equal(ckpt.statistics["fg_matrix"], stats["fg_matrix"])
    want = trained.state_dict()
    for mode in ("sgdet", "sgcls", "predcls"):
        model, cfg = build_model_from_checkpoint(ckpt, mode, ["TEST.RELATION.TOPK_TRIPLETS", "3"])
        assert model.mode == mode and not model.training and cfg.TEST.RELATION.TOPK_TRIPLETS == 3
        got = model.state_dict()
        for k, v in got.items():  # the trained weights, frequency bias included (not pred_dist)
            torch.testing.assert_close(v, want[k], rtol=0, atol=0, msg=k)
        assert (mode == "predcls") == (len(got) < len(want))  # PredCls has no object decoder


def test_checkpoint_without_metadata_or_decoder_refused_with_the_fix(tmp_path):
    detector = build_detection_model(tiny_cfg(), load_pretrained=False)
    Checkpointer(detector, save_dir=str(tmp_path)).save("det", iteration=1)
    with pytest.raises(CheckpointError, match=r"det\.pth carries no class / predicate vocabularies.*"
                                              r"maskrcnn_benchmark\.engine\.export"):
        read_sgg_checkpoint(str(tmp_path / "det.pth"))
    save_tiny_checkpoint(tmp_path / "pc.pth", mode="predcls")
    ckpt = read_sgg_checkpoint(str(tmp_path / "pc.pth"))
    assert ckpt.trained_mode == "predcls"
    assert build_model_from_checkpoint(ckpt)[0].mode == "predcls"
    for mode in ("sgdet", "sgcls"):
        with pytest.raises(CheckpointError, match=f"trained in predcls and has no object decoder: it cannot run in {mode}"):
            build_model_from_checkpoint(ckpt, mode)


def test_attach_metadata_to_an_old_checkpoint(tmp_path, monkeypatch):
    cfg, stats = tiny_cfg(), tiny_statistics()
    model = build_scene_graph_model(cfg, statistics=stats)
    Checkpointer(model, save_dir=str(tmp_path), config=cfg).save("old", iteration=3)
    with pytest.raises(CheckpointError, match="carries no class"):
        read_sgg_checkpoint(str(tmp_path / "old.pth"))
    import maskrcnn_benchmark.data.statistics as statistics_module
    monkeypatch.setattr(statistics_module, "get_dataset_statistics", lambda c: stats)
    attach_metadata(str(tmp_path / "old.pth"), str(tmp_path / "new.pth"))
    ckpt = read_sgg_checkpoint(str(tmp_path / "new.pth"))
    assert ckpt.obj_classes == OBJ and ckpt.info["iteration"] == 3
