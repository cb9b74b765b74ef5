import os

import pytest
import yaml

from maskrcnn_benchmark.config import ConfigError, get_cfg, load_config, save_config
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog


def test_defaults_are_not_mutated_by_get_cfg():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 123.0
    assert get_cfg().SOLVER.BASE_LR != 123.0


def test_file_then_overrides(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump({"SOLVER": {"BASE_LR": 0.05, "STEPS": [10, 20]},
                                 "MODEL": {"ROI_RELATION_HEAD": {"USE_GT_BOX": False}}}))
    cfg = load_config(str(f), ["SOLVER.BASE_LR", "0.2", "MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED", "True"])
    assert cfg.SOLVER.BASE_LR == 0.2 and cfg.SOLVER.STEPS == (10, 20)
    assert cfg.MODEL.ROI_RELATION_HEAD.USE_GT_BOX is False
    assert cfg.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED is True
    assert cfg.is_frozen()


def test_int_accepted_for_float_key_and_tuple_from_string():
    cfg = load_config(None, ["SOLVER.BASE_LR", "1", "INPUT.MIN_SIZE_TRAIN", "(128, 160)"])
    assert isinstance(cfg.SOLVER.BASE_LR, float) and cfg.INPUT.MIN_SIZE_TRAIN == (128, 160)


@pytest.mark.parametrize("opts,match", [
    (["SOLVER.NOT_A_KEY", "1"], "unknown config key SOLVER.NOT_A_KEY"),
    (["NOPE.X", "1"], "unknown config key NOPE.X"),
    (["SOLVER.MAX_ITER", "ten"], "SOLVER.MAX_ITER: expected int"),
    (["MODEL.RELATION_ON", "1"], "MODEL.RELATION_ON: expected bool"),
    (["SOLVER", "1"], "group of keys"),
    (["SOLVER.MAX_ITER"], "KEY VALUE pairs"),
])
def test_bad_overrides_name_the_key(opts, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, opts)


def test_unknown_key_in_file_names_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("MODEL:\n  ROI_RELATION_HEAD:\n    PREDICTR: MotifPredictor\n")
    with pytest.raises(ConfigError, match="PREDICTR.*bad.yaml"):
        load_config(str(f))
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["SOLVER.MAX_ITER", "77", "OUTPUT_DIR", str(tmp_path)])
    save_config(cfg, str(tmp_path / "config.yaml"))
    again = load_config(str(tmp_path / "config.yaml"))
    assert again == cfg


def test_paths_catalog():
    args = DatasetCatalog.get("VG_stanford_filtered_with_attribute_val", "/data")
    assert args["split"] == "val" and args["roidb_file"] == "/data/vg/VG-SGG-with-attri.h5"
    assert DatasetCatalog.get("synthvg_test")["img_dir"] == "datasets/synthvg/VG_100K"
    # any <name>_<split> is the VG150-format dataset in DATA_DIR/<name>/ (no code change needed)
    mine = DatasetCatalog.get("my_photos_test", "/data")
    assert mine["split"] == "test" and mine["dict_file"] == "/data/my_photos/VG-SGG-dicts-with-attri.json"
    for bad in ("coco", "coco_training", "_train", "../x_train"):
        with pytest.raises(KeyError, match="<folder>_train"):
            DatasetCatalog.get(bad)


def test_base_file_is_merged_first(tmp_path):
    (tmp_path / "base.yaml").write_text("SOLVER:\n  BASE_LR: 0.5\n  MAX_ITER: 10\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("_BASE_: ../base.yaml\nSOLVER:\n  MAX_ITER: 20\n")
    cfg = load_config(str(tmp_path / "sub" / "child.yaml"))
    assert cfg.SOLVER.BASE_LR == 0.5 and cfg.SOLVER.MAX_ITER == 20


def test_vg150_relation_configs_follow_sgb_relation_configs():
    # SGB's e2e_relation_X_101_32_8_FPN_1x.yaml: NMS_FILTER_DUPLICATES True, REQUIRE_OVERLAP False,
    # LATER_NMS_PREDICTION_THRES 0.5 (its code defaults: False, True, 0.3)
    root = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
    for name in ("e2e_relation_VGG16_1x.yaml", "e2e_relation_VGG16_1x_align.yaml"):
        cfg = load_config(os.path.join(root, name))
        assert cfg.MODEL.ROI_HEADS.NMS_FILTER_DUPLICATES is True
        assert cfg.TEST.RELATION.REQUIRE_OVERLAP is False
        assert cfg.TEST.RELATION.LATER_NMS_PREDICTION_THRES == 0.5
    det = load_config(os.path.join(root, "e2e_relation_detector_VGG16_1x.yaml"))
    assert det.MODEL.ROI_HEADS.NMS_FILTER_DUPLICATES is False  # SGB's detector configs


def test_renamed_key_still_loads_under_sgb_name(tmp_path):
    # older configs (and configs stored in older checkpoints) used our former name of SGB's key
    f = tmp_path / "old.yaml"
    f.write_text(yaml.safe_dump({"MODEL": {"ROI_RELATION_HEAD": {"LATER_NMS_PREDICTION_THRES": 0.4}}}))
    assert load_config(str(f)).TEST.RELATION.LATER_NMS_PREDICTION_THRES == 0.4
    cfg = load_config(None, ["MODEL.ROI_RELATION_HEAD.LATER_NMS_PREDICTION_THRES", "0.45"])
    assert cfg.TEST.RELATION.LATER_NMS_PREDICTION_THRES == 0.45
    assert "LATER_NMS_PREDICTION_THRES" not in cfg.MODEL.ROI_RELATION_HEAD


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("SOLVER:\n  BASE_LR: 0.1\n  STEPS: [10, 20\nMODEL:\n  DEVICE: cpu\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml.* line \d+") as e:
        load_config(str(f))
    assert "\n" not in str(e.value)


def test_self_referring_base_is_a_config_error(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("_BASE_: b.yaml\n")
    b.write_text("_BASE_: a.yaml\n")
    (tmp_path / "self.yaml").write_text("_BASE_: self.yaml\n")
    with pytest.raises(ConfigError, match=r"_BASE_ cycle.*self\.yaml"):
        load_config(str(tmp_path / "self.yaml"))
    with pytest.raises(ConfigError, match=r"_BASE_ cycle.*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config(str(a))


def test_missing_base_names_the_referring_file(tmp_path):
    f = tmp_path / "child.yaml"
    f.write_text("_BASE_: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml.*_BASE_ of .*child\.yaml"):
        load_config(str(f))
