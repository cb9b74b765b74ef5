"""The frequency-prior baseline predictor (registered alongside Motifs)."""
import pytest
import torch

from maskrcnn_benchmark.modeling.roi_heads.relation_head import ROIRelationHead


@pytest.mark.parametrize("mode", ["predcls", "sgcls"])
def test_scores_pairs_by_the_class_pair_prior_only(mode, make_cfg, make_batch, stats):
    cfg = make_cfg(mode)
    cfg.MODEL.ROI_RELATION_HEAD.PREDICTOR = "FrequencyPredictor"
    cfg.MODEL.ROI_RELATION_HEAD.PREDICT_USE_VISION = False
    cfg.TEST.RELATION.TOPK_TRIPLETS = 0
    head = ROIRelationHead.from_config(cfg, in_channels=32, statistics=stats).eval()
    feats, sizes, targets, proposals = make_batch(mode)
    with torch.no_grad():
        results = head(feats, proposals, sizes)
        other = head(torch.randn_like(feats), proposals, sizes)  # the image does not matter
    for r, o, p in zip(results, other, proposals):
        expected_labels = p["labels"] if mode == "predcls" else p["class_logits"][:, 1:].argmax(1) + 1
        assert torch.equal(r["labels"], expected_labels)
        s, ob = r["labels"][r["rel_pairs"][:, 0]], r["labels"][r["rel_pairs"][:, 1]]
        assert torch.allclose(r["rel_scores"], torch.softmax(stats["pred_dist"][s, ob], -1), atol=1e-6)
        assert torch.equal(r["rel_scores"], o["rel_scores"])
    if mode == "predcls":
        assert all(torch.allclose(r["scores"], torch.ones_like(r["scores"])) for r in results)
