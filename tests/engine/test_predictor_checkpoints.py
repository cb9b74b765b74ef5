"""Each relation predictor (with the alignment on in training) round-trips through a
self-contained checkpoint: sgg_infer.py loads it, the untied head left out, and predicts what the
trained model predicts."""
import json

import pytest
import torch

from maskrcnn_benchmark.engine.export import build_model_from_checkpoint, checkpoint_metadata, read_sgg_checkpoint
from maskrcnn_benchmark.engine.sgg_inference import SceneGraphPredictor
from maskrcnn_benchmark.modeling.detector import build_scene_graph_model
from maskrcnn_benchmark.modeling.roi_heads.relation_head.alignment import ALIGNMENT_STATE_PREFIX
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

from .test_export import OBJ, REL, tiny_cfg, tiny_statistics
from .test_sgg_infer import infer, picture


def _cfg(predictor, mode):
    cfg = tiny_cfg(mode).clone()
    cfg.defrost()
    h = cfg.MODEL.ROI_RELATION_HEAD
    h.PREDICTOR, h.ALIGN.ENABLED = predictor, True
    t = h.TRANSFORMER
    t.OBJ_LAYER, t.REL_LAYER, t.NUM_HEAD, t.INNER_DIM, t.KEY_DIM, t.VAL_DIM = 1, 1, 2, 16, 4, 4
    cfg.freeze()
    return cfg


@pytest.mark.parametrize("predictor", ["TransformerPredictor", "VCTreePredictor", "IMPPredictor"])
def test_checkpoint_round_trip_through_sgg_infer(predictor, tmp_path):
    cfg, stats = _cfg(predictor, "sgdet"), tiny_statistics()
    torch.manual_seed(0)
    model = build_scene_graph_model(cfg, statistics=stats)
    with torch.no_grad():  # as if trained: every relation-head weight moved
        for p in model.relation_head.parameters():
            p.add_(0.01 * torch.randn_like(p))
    Checkpointer(model, save_dir=str(tmp_path), config=cfg,
                 extra=checkpoint_metadata(cfg, stats)).save("model_final", iteration=5, tag_last=False)
    path = tmp_path / "model_final.pth"
    ckpt = read_sgg_checkpoint(str(path))
    assert any(k.startswith(ALIGNMENT_STATE_PREFIX) for k in ckpt.state)
    trained = model.state_dict()
    for mode in ("sgdet", "sgcls", "predcls"):
        loaded, _ = build_model_from_checkpoint(ckpt, mode)
        for k, v in loaded.state_dict().items():
            assert torch.equal(v, trained[k]), k

    image = picture(96, 64)
    image.save(tmp_path / "img.png")
    tensor = SceneGraphPredictor(model, cfg, OBJ, REL, torch.device("cpu")).transforms(image, None)[0]
    want = SceneGraphPredictor(model, cfg, OBJ, REL, torch.device("cpu")).predict([tensor])[0]
    got = SceneGraphPredictor.from_checkpoint(str(path), device="cpu").predict([tensor])[0]
    for key in want:
        assert (want[key] == got[key]) if key == "image_size" else torch.equal(want[key], got[key]), key

    assert infer("--checkpoint", path, "--images", tmp_path / "img.png", "--output", tmp_path / "out",
                 "--topk", 5, "--no-png") == 0
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["config"]["MODEL"]["ROI_RELATION_HEAD"]["PREDICTOR"] == predictor
    sg = json.loads((tmp_path / "out" / index["images"][0]["json"]).read_text())
    assert [[r["subject"], r["object"]] for r in sg["relations"]] == want["rel_pairs"][:5].tolist()
