"""Zero-shot triplets as the relation tools compute them (engine.relation_inference): from the
training split only (val images left out) and through a cache keyed by the training data's content."""
import numpy as np
import pytest

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.data.datasets.evaluation.vg import vg_eval
from maskrcnn_benchmark.engine.relation_inference import _zeroshot

# classes: cat 1, dog 2, hat 3; predicates: on 1, has 2, near 3


def _images(vg_image, train_triplet=(0, 1, 2)):
    return [vg_image(1, labels=(1, 2), rels=((0, 1, 1),)),  # the first train image: val (NUM_VAL_IM 1)
            vg_image(2, labels=(1, 3), rels=(train_triplet,)),
            vg_image(3, split=2, labels=(1, 2, 3), boxes=((0, 0, 100, 100), (50, 50, 200, 200), (10, 10, 60, 60)),
                     rels=((0, 1, 1), (0, 2, 2), (0, 2, 3)))]


def _cfg(tmp_path):
    return load_config(None, ["DATASETS.DATA_DIR", str(tmp_path), "DATASETS.NUM_VAL_IM", "1",
                              "OUTPUT_DIR", str(tmp_path / "out")])


def _test_gts():
    return [{"labels": np.array([1, 2, 3]), "relations": np.array([[0, 1, 1], [0, 2, 2], [0, 2, 3]])}]


def test_zeroshot_triplets_come_from_the_train_split_without_val(tmp_path, vg_files, vg_image):
    vg_files(_images(vg_image), folder="vg")
    # cat-on-dog is seen only in the val image: zero-shot; cat-has-hat is a training triplet
    assert _zeroshot(_cfg(tmp_path), _test_gts()).tolist() == [[1, 2, 1], [1, 3, 3]]


def test_train_triplet_cache_is_keyed_by_the_data_not_the_path(tmp_path, vg_files, vg_write, vg_image,
                                                               monkeypatch):
    files = vg_files(_images(vg_image), folder="vg")
    cfg = _cfg(tmp_path)
    assert _zeroshot(cfg, _test_gts()).tolist() == [[1, 2, 1], [1, 3, 3]]
    cache = tmp_path / "out" / "VG_stanford_filtered_with_attribute_train_train_triplets.npz"
    assert cache.is_file()
    with monkeypatch.context() as m:  # unchanged data: read from the cache, nothing recomputed
        m.setattr(vg_eval, "dataset_items", lambda ds: pytest.fail("the cache was not used"))
        assert _zeroshot(cfg, _test_gts()).tolist() == [[1, 2, 1], [1, 3, 3]]
    # the same files rewritten: the training image now has cat-near-hat instead of cat-has-hat
    vg_write(str(tmp_path / "vg"), _images(vg_image, train_triplet=(0, 1, 3)))
    assert files["roidb_file"] == str(tmp_path / "vg" / "VG-SGG-with-attri.h5")
    assert _zeroshot(cfg, _test_gts()).tolist() == [[1, 2, 1], [1, 3, 2]]
    # a cache of the old format (a bare .npy array) at that path is replaced, not trusted
    with open(cache, "wb") as f:
        np.save(f, np.array([[1, 2, 1], [1, 3, 2], [1, 3, 3]]))
    assert _zeroshot(cfg, _test_gts()).tolist() == [[1, 2, 1], [1, 3, 2]]
    with np.load(cache) as cached:
        assert cached["triplets"].tolist() == [[1, 3, 3]]
