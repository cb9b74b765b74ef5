"""The YAML files in configs/: every one loads, the full-size VG150 ones hold the paper's values
(Sec. 4.2), and the SynthVG ones the structural facts the tools rely on (their schedules are sized
for a CPU and may change)."""
import glob
import importlib.util
import os

import pytest

from maskrcnn_benchmark.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"),
                                                                 recursive=True))
MODES = {"predcls": (True, True), "sgcls": (True, False), "sgdet": (False, False)}


def _load(name, *opts):
    return load_config(os.path.join(ROOT, name), list(opts))


def test_configs_are_found():
    assert "configs/e2e_relation_VGG16_1x.yaml" in CONFIGS and len(CONFIGS) >= 10


@pytest.mark.parametrize("name", CONFIGS)
def test_every_shipped_config_loads(name):
    cfg = _load(name)
    assert cfg.is_frozen() and cfg.OUTPUT_DIR
    if cfg.MODEL.RELATION_ON:
        assert cfg.MODEL.PRETRAINED_DETECTOR_CKPT.endswith("model_final.pth")
        from maskrcnn_benchmark.modeling.registry import ROI_RELATION_PREDICTOR
        import maskrcnn_benchmark.modeling.roi_heads.relation_head  # noqa: F401  (registers the predictors)
        assert cfg.MODEL.ROI_RELATION_HEAD.PREDICTOR in ROI_RELATION_PREDICTOR


def _relation_tool_best_metric():
    spec = importlib.util.spec_from_file_location("relation_train_net", os.path.join(ROOT, "tools",
                                                                                      "relation_train_net.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BEST_METRIC


def _assert_alignment_as_in_the_paper(cfg):
    a = cfg.MODEL.ROI_RELATION_HEAD.ALIGN
    assert a.ENABLED and a.MASK_PROB == 0.1 and a.LOSS_WEIGHT == 10.0
    assert a.HEAD == "untied_mlp" and a.LOSS == "kl" and a.MASK == "row"


@pytest.mark.parametrize("name", ["configs/e2e_relation_VGG16_1x.yaml", "configs/e2e_relation_VGG16_1x_align.yaml"])
def test_vg150_relation_configs_hold_the_papers_training_setting(name):
    cfg = _load(name)
    s = cfg.SOLVER
    assert s.IMS_PER_BATCH == 24 and s.MAX_ITER == 100000 and s.BASE_LR == 0.01
    assert s.MOMENTUM == 0.9 and s.WEIGHT_DECAY == 1e-4
    assert s.SCHEDULE.TYPE == "WarmupCosineLR" and s.SCHEDULE.UPDATE_PERIOD == 1000 and s.SCHEDULE.MIN_LR == 0.0
    assert s.TO_VAL and s.SELECT_BEST_VAL and _relation_tool_best_metric() == "val/mR@50"  # best val mR@50 tested
    assert cfg.TEST.RELATION.MAX_BOXES == 40
    assert cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES == 151 and cfg.MODEL.ROI_RELATION_HEAD.NUM_CLASSES == 51
    assert cfg.MODEL.BACKBONE.CONV_BODY == "VGG-16"
    head = cfg.MODEL.ROI_RELATION_HEAD
    assert (head.USE_GT_BOX, head.USE_GT_OBJECT_LABEL) == MODES["predcls"]
    detector = _load("configs/e2e_relation_detector_VGG16_1x.yaml")
    assert not detector.MODEL.RELATION_ON
    assert cfg.MODEL.PRETRAINED_DETECTOR_CKPT == os.path.join(detector.OUTPUT_DIR, "model_final.pth")
    if "align" in name:
        _assert_alignment_as_in_the_paper(cfg)
    else:
        assert not head.ALIGN.ENABLED


def _differences(a, b, prefix=""):
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(prefix + k)
    return out


@pytest.mark.parametrize("plain,aligned", [
    ("configs/e2e_relation_VGG16_1x.yaml", "configs/e2e_relation_VGG16_1x_align.yaml"),
    *[(f"configs/synthvg/motifs_{m}.yaml", f"configs/synthvg/motifs_align_{m}.yaml") for m in MODES]])
def test_align_motifs_is_motifs_plus_the_alignment_only(plain, aligned):
    """The comparison of the paper: the same model and schedule, the alignment switched on."""
    diff = _differences(_load(plain), _load(aligned))
    assert "MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED" in diff
    assert all(k.startswith("MODEL.ROI_RELATION_HEAD.ALIGN.") or k == "OUTPUT_DIR" for k in diff), diff


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("align", [False, True])
def test_synthvg_relation_configs_switch_the_mode_and_fit_the_detector(mode, align):
    cfg = _load(f"configs/synthvg/motifs_{'align_' if align else ''}{mode}.yaml")
    head = cfg.MODEL.ROI_RELATION_HEAD
    assert cfg.MODEL.RELATION_ON and (head.USE_GT_BOX, head.USE_GT_OBJECT_LABEL) == MODES[mode]
    assert cfg.DATASETS.TRAIN == ("synthvg_train",) and head.NUM_CLASSES == 26
    detector = _load("configs/synthvg/detector_VGG16.yaml")
    assert not detector.MODEL.RELATION_ON and cfg.MODEL.ROI_BOX_HEAD == detector.MODEL.ROI_BOX_HEAD
    assert cfg.MODEL.BACKBONE == detector.MODEL.BACKBONE
    assert cfg.MODEL.PRETRAINED_DETECTOR_CKPT == os.path.join(detector.OUTPUT_DIR, "model_final.pth")
    if align:
        _assert_alignment_as_in_the_paper(cfg)
    else:
        assert not head.ALIGN.ENABLED
    outputs = {_load(f"configs/synthvg/motifs_{a}{m}.yaml").OUTPUT_DIR for a in ("", "align_") for m in MODES}
    assert len(outputs) == 6  # no two runs share an output folder
