"""The predictor configs: each SynthVG one is its Motifs config (same schedule, data, sizes,
alignment settings) with the predictor swapped; the VG150 ones likewise; all build."""
import os

import pytest

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.modeling.roi_heads.relation_head import ROIRelationHead, relation_mode

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs")
NAMES = {"transformer": "TransformerPredictor", "vctree": "VCTreePredictor", "imp": "IMPPredictor"}


def _differences(a, b, prefix=""):
    out = []
    for k in a:
        if hasattr(a[k], "items"):
            out += _differences(a[k], b[k], f"{prefix}{k}.")
        elif a[k] != b[k]:
            out.append(prefix + k)
    return out


@pytest.mark.parametrize("align", ["", "_align"])
@pytest.mark.parametrize("key", sorted(NAMES))
def test_synthvg_predictor_configs_are_motifs_with_the_predictor_swapped(key, align):
    for mode in ("predcls", "sgcls", "sgdet"):
        cfg = load_config(os.path.join(ROOT, "synthvg", f"{key}{align}_{mode}.yaml"))
        motifs = load_config(os.path.join(ROOT, "synthvg", f"motifs{align}_{mode}.yaml"))
        assert cfg.MODEL.ROI_RELATION_HEAD.PREDICTOR == NAMES[key] and relation_mode(cfg) == mode
        allowed = {"MODEL.ROI_RELATION_HEAD.PREDICTOR", "OUTPUT_DIR"}
        if key == "transformer":
            allowed |= {f"MODEL.ROI_RELATION_HEAD.TRANSFORMER.{k}" for k in ("NUM_HEAD", "INNER_DIM", "KEY_DIM",
                                                                             "VAL_DIM")}
            allowed |= {"MODEL.ROI_RELATION_HEAD.ALIGN.DROPOUT_FREE"} if align else set()
        assert set(_differences(cfg, motifs)) <= allowed
        assert cfg.OUTPUT_DIR == f"demo_output/{key}{align}_{mode}"
        if mode == "predcls":  # the relation head builds at these sizes
            head = ROIRelationHead.from_config(cfg, in_channels=512 // cfg.MODEL.BACKBONE.WIDTH_DIVISOR)
            assert type(head.predictor).__name__ == NAMES[key]
            assert (head.predictor.alignment is not None) == bool(align)


@pytest.mark.parametrize("key", sorted(NAMES))
def test_vg150_predictor_configs(key):
    for align in ("", "_align"):
        cfg = load_config(os.path.join(ROOT, f"e2e_relation_VGG16_1x_{key}{align}.yaml"))
        base = load_config(os.path.join(ROOT, f"e2e_relation_VGG16_1x{align}.yaml"))
        assert cfg.MODEL.ROI_RELATION_HEAD.PREDICTOR == NAMES[key]
        if key == "transformer":  # SGB's README: a tenth of the Motifs lr; the rest of the solver is Motifs's
            assert cfg.SOLVER.BASE_LR == pytest.approx(base.SOLVER.BASE_LR / 10)
            assert _differences(cfg.SOLVER, base.SOLVER) == ["BASE_LR"]
        else:
            assert cfg.SOLVER == base.SOLVER
        assert cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED == bool(align)
        assert cfg.MODEL.ROI_RELATION_HEAD.TRANSFORMER.NUM_HEAD == 8  # SGB's sizes
