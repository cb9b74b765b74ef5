"""Frequency statistics on a hand-made case (SGB's definition) and their cache key."""
import os

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.data import get_dataset_statistics
from maskrcnn_benchmark.data import statistics as stats_module

CAT, DOG, HAT = 1, 2, 3
ON, HAS, NEAR = 1, 2, 3


def case(vg_image):
    return [
        # val (NUM_VAL_IM = 1): must not be counted
        vg_image(9, labels=(HAT, HAT), rels=((0, 1, HAS),)),
        # A: 0/1 overlap, 2 apart; a duplicate pair
        vg_image(10, boxes=((0, 0, 100, 100), (50, 50, 200, 200), (300, 300, 400, 400)),
                 labels=(CAT, DOG, HAT), rels=((0, 1, ON), (0, 1, HAS), (2, 0, NEAR))),
        # B: nothing overlaps -> every ordered pair is background
        vg_image(11, boxes=((0, 0, 10, 10), (20, 20, 30, 30)), labels=(DOG, DOG),
                 rels=((0, 1, ON),)),
        # C: 0 and 1 only touch (no area), 2 overlaps both
        vg_image(12, boxes=((0, 0, 10, 10), (10, 0, 20, 10), (5, 5, 15, 15)),
                 labels=(CAT, HAT, DOG), rels=((2, 1, ON),)),
        vg_image(20, split=2, labels=(CAT, CAT), rels=((0, 1, NEAR),)),  # test: not counted
    ]


def cfg_for(root, out):
    return load_config(None, ["DATASETS.DATA_DIR", root, "DATASETS.TRAIN", "('synthvg_train',)",
                              "DATASETS.NUM_VAL_IM", "1", "OUTPUT_DIR", out])


def test_statistics_hand_made(vg_files, vg_image, tmp_path):
    files = vg_files(case(vg_image), folder="synthvg")
    root = os.path.dirname(os.path.dirname(files["roidb_file"]))
    stats = get_dataset_statistics(cfg_for(root, str(tmp_path / "out")))
    fg = np.zeros((4, 4, 4), np.int64)
    fg[CAT, DOG, ON] = fg[CAT, DOG, HAS] = fg[HAT, CAT, NEAR] = fg[DOG, DOG, ON] = 1
    fg[DOG, HAT, ON] = 1
    bg = np.ones((4, 4), np.int64)
    bg[CAT, DOG] += 2
    bg[DOG, CAT] += 2
    bg[DOG, DOG] += 2
    bg[HAT, DOG] += 1
    bg[DOG, HAT] += 1
    fg[:, :, 0] = bg
    assert torch.equal(stats["bg_matrix"], torch.from_numpy(bg))
    assert torch.equal(stats["fg_matrix"], torch.from_numpy(fg))
    expected = np.log(fg / fg.sum(2)[:, :, None] + 1e-3)
    assert torch.allclose(stats["pred_dist"], torch.from_numpy(expected).float())
    assert stats["pred_dist"].dtype == torch.float32
    assert stats["obj_classes"] == ["__background__", "cat", "dog", "hat"]
    assert stats["rel_classes"] == ["__background__", "on", "has", "near"]


def test_cache_reused_and_keyed_on_the_files(vg_files, vg_image, vg_write, tmp_path,
                                             monkeypatch):
    files = vg_files(case(vg_image), folder="synthvg")
    data = os.path.dirname(files["roidb_file"])
    root = os.path.dirname(data)
    out = str(tmp_path / "out")
    first = get_dataset_statistics(cfg_for(root, out))
    caches = [f for f in os.listdir(out) if f.endswith(".cache")]
    assert len(caches) == 1 and caches[0].startswith("synthvg_train_statistics_")

    def fail(*a, **k):
        raise AssertionError("recomputed although cached")
    with monkeypatch.context() as m:
        m.setattr(stats_module, "compute_statistics", fail)
        again = get_dataset_statistics(cfg_for(root, out))
    assert torch.equal(again["fg_matrix"], first["fg_matrix"])

    images = case(vg_image)
    images[1]["rels"] = [(0, 1, NEAR)]  # same file names, other content
    vg_write(data, images)
    changed = get_dataset_statistics(cfg_for(root, out))
    assert changed["fg_matrix"][CAT, DOG, NEAR] == 1 and changed["fg_matrix"][CAT, DOG, ON] == 0
    assert len([f for f in os.listdir(out) if f.endswith(".cache")]) == 2
    other = load_config(None, ["DATASETS.DATA_DIR", root, "DATASETS.TRAIN", "('synthvg_train',)",
                               "DATASETS.NUM_VAL_IM", "2", "OUTPUT_DIR", out])
    assert get_dataset_statistics(other)["fg_matrix"][CAT, DOG, NEAR] == 0


def test_broken_cache_is_recomputed(vg_files, vg_image, tmp_path):
    files = vg_files(case(vg_image), folder="synthvg")
    root = os.path.dirname(os.path.dirname(files["roidb_file"]))
    out = str(tmp_path / "out")
    first = get_dataset_statistics(cfg_for(root, out))
    cache = os.path.join(out, os.listdir(out)[0])
    with open(cache, "wb") as f:
        f.write(b"garbage")
    assert torch.equal(get_dataset_statistics(cfg_for(root, out))["fg_matrix"],
                       first["fg_matrix"])


@pytest.mark.parametrize("must_overlap, expected", [(True, [[0, 1], [1, 0]]),
                                                    (False, [[0, 1], [0, 2], [1, 0], [1, 2],
                                                             [2, 0], [2, 1]])])
def test_overlapping_pairs(must_overlap, expected):
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 20], [20, 0, 30, 10]])
    assert stats_module.overlapping_pairs(boxes, must_overlap).tolist() == expected


def test_statistics_of_the_train_fraction_and_its_cache_key(vg_files, vg_image, tmp_path):
    """The prior counts exactly the images a TRAIN_FRACTION run trains on, and its cache is keyed
    on the fraction (a 50% cache is never served to a 100% run, nor the reverse)."""
    from maskrcnn_benchmark.data.build import build_dataset
    images = [vg_image(9, labels=(HAT, HAT), rels=((0, 1, HAS),))]  # val
    images += [vg_image(10 + i, labels=(CAT, DOG), rels=((0, 1, 1 + i % 3),)) for i in range(8)]
    files = vg_files(images, folder="synthvg")
    root = os.path.dirname(os.path.dirname(files["roidb_file"]))
    out = str(tmp_path / "out")

    def cfg(fraction):
        return load_config(None, ["DATASETS.DATA_DIR", root, "DATASETS.TRAIN", "('synthvg_train',)",
                                  "DATASETS.NUM_VAL_IM", "1", "DATASETS.TRAIN_FRACTION", str(fraction),
                                  "OUTPUT_DIR", out])
    for fraction in (0.5, 1.0, 0.5):  # the second 0.5 comes from its cache
        stats = get_dataset_statistics(cfg(fraction))
        trained = build_dataset(cfg(fraction), "train")
        assert len(trained) == (4 if fraction == 0.5 else 8)
        expected = np.zeros(4, np.int64)
        for i in range(len(trained)):
            expected[trained.raw_annotations(i)[2][:, 2]] += 1
        assert stats["fg_matrix"][CAT, DOG, 1:].tolist() == expected[1:].tolist()
        assert stats["fg_matrix"][HAT, HAT, HAS] == 0  # the val image is never counted
    assert len([f for f in os.listdir(out) if f.endswith(".cache")]) == 2
