"""VGDataset on hand-made VG150 files: splits, decoding, filters, targets and every bad input."""
import json
import logging
import os

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.data import DatasetError, VGDataset
from maskrcnn_benchmark.data.datasets.visual_genome import decode_boxes


def ids(ds):
    return [ds.get_img_info(i)["image_id"] for i in range(len(ds))]


def test_splits_follow_sgb(vg_files, vg_image):
    images = [vg_image(10), vg_image(11), vg_image(12, rels=()), vg_image(13), vg_image(14),
              vg_image(15), vg_image(16, boxes=(), labels=(), rels=()), vg_image(20, split=2),
              vg_image(21, split=2)]
    files = vg_files(images)
    assert ids(VGDataset("val", num_val_im=2, **files)) == [10, 11]
    assert ids(VGDataset("train", num_val_im=2, **files)) == [13, 14, 15]
    assert ids(VGDataset("test", num_val_im=2, **files)) == [20, 21]
    assert ids(VGDataset("train", num_val_im=2, num_im=4, **files)) == [13, 14]
    # without the empty-relation filter image 12 stays; 16 (no box) never appears
    assert ids(VGDataset("train", num_val_im=2, filter_empty_rels=False, **files)) == \
        [12, 13, 14, 15]
    assert ids(VGDataset("train", num_val_im=0, **files)) == [10, 11, 13, 14, 15]


def test_box_decoding_matches_sgb():
    # SGB: x1 = int(cx - w / 2), x2 = x1 + w; VG's own encoding (cx = x + w // 2) loses a pixel
    raw = np.array([[50, 60, 21, 10], [50, 60, 20, 11], [0, 0, 1, 1]], np.int32)
    assert decode_boxes(raw).tolist() == [[39, 55, 60, 65], [40, 54, 60, 65], [0, 0, 1, 1]]


def test_groundtruth_and_sample_in_image_pixels(vg_files, vg_image):
    boxes = ((0, 0, 100, 100), (3, 5, 104, 206), (512, 256, 1016, 760))
    files = vg_files([vg_image(10, boxes=boxes, labels=(1, 2, 3), rels=((0, 1, 2), (2, 0, 3)),
                            width=256, height=192)])
    ds = VGDataset("train", num_val_im=0, **files)
    gt = ds.get_groundtruth(0)
    np.testing.assert_allclose(gt["boxes"], np.array(boxes, np.float32) / 4)
    over = VGDataset("train", num_val_im=0, **vg_files([vg_image(
        10, boxes=((1000, 700, 1100, 800), (0, 0, 5, 5)), width=256, height=192)]))
    # clipped as SGB's BoxList.clip_to_image: to [0, W - 1] x [0, H - 1], not [0, W] x [0, H]
    assert over.get_groundtruth(0)["boxes"][0].tolist() == [250, 175, 255, 191]
    assert gt["labels"].tolist() == [1, 2, 3]
    assert gt["relations"].tolist() == [[0, 1, 2], [2, 0, 3]]
    img, target, idx = ds[0]
    assert idx == 0 and img.shape == (3, 192, 256) and img.dtype == torch.float32
    assert torch.equal(target["boxes"], torch.from_numpy(gt["boxes"]))
    assert target["labels"].dtype == torch.int64
    assert target["relation_tuples"].tolist() == [[0, 1, 2], [2, 0, 3]]
    matrix = torch.zeros(3, 3, dtype=torch.int64)
    matrix[0, 1], matrix[2, 0] = 2, 3
    assert torch.equal(target["relation_matrix"], matrix)
    assert target["image_id"] == 10
    assert target["orig_size"] == (192, 256) and target["image_size"] == (192, 256)
    assert ds.get_img_info(0) == {"width": 256, "height": 192, "image_id": 10}
    assert ds.ind_to_classes == ["__background__", "cat", "dog", "hat"]
    assert ds.ind_to_predicates == ["__background__", "on", "has", "near"]


def test_duplicate_filter_train_only(vg_files, vg_image):
    rels = ((0, 1, 1), (0, 1, 2), (1, 0, 3))
    files = vg_files([vg_image(10, rels=rels), vg_image(20, split=2, rels=rels)])
    train = VGDataset("train", num_val_im=0, **files)
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        t = train[0][1]["relation_tuples"].tolist()
        assert len(t) == 2 and [1, 0, 3] in t
        seen.add(next(p for s, o, p in t if (s, o) == (0, 1)))
    assert seen == {1, 2}  # one predicate per pair, drawn at random
    assert len(train.get_groundtruth(0)["relations"]) == 3  # evaluation keeps every pair
    assert len(VGDataset("train", num_val_im=0, filter_duplicate_rels=False, **files)[0][1][
        "relation_tuples"]) == 3
    test = VGDataset("test", **files)
    target = test[0][1]
    assert target["relation_tuples"].tolist() == [list(r) for r in rels]
    assert int(target["relation_matrix"][0, 1]) in (1, 2)


def test_non_overlap_filter(vg_files, vg_image):
    boxes = ((0, 0, 100, 100), (50, 50, 150, 150), (100, 0, 200, 100), (151, 151, 600, 600))
    rels = ((0, 1, 1), (0, 2, 2), (1, 3, 3))  # overlap, share an edge (+1 rule), 1 px apart
    images = [vg_image(10, boxes=boxes, labels=(1, 2, 3, 1), rels=rels),
              vg_image(11, boxes=boxes, labels=(1, 2, 3, 1), rels=((1, 3, 3),)),
              vg_image(20, split=2, boxes=boxes, labels=(1, 2, 3, 1), rels=rels)]
    files = vg_files(images, write_images=False)
    train = VGDataset("train", num_val_im=0, filter_non_overlap=True, **files)
    assert ids(train) == [10]
    assert train.get_groundtruth(0)["relations"].tolist() == [[0, 1, 1], [0, 2, 2]]
    assert ids(VGDataset("train", num_val_im=0, **files)) == [10, 11]
    test = VGDataset("test", filter_non_overlap=True, **files)  # train only
    assert len(test.get_groundtruth(0)["relations"]) == 3


def test_corrupted_vg_images_skipped_with_one_warning(vg_files, caplog, vg_image):
    extra = [{"width": 10, "height": 10, "image_id": i} for i in (1592, 1722)]
    files = vg_files([vg_image(10), vg_image(11)], extra_image_data=extra)
    with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark.data"):
        ds = VGDataset("train", num_val_im=0, **files)
    assert ids(ds) == [10, 11]
    warnings = [r for r in caplog.records if "corrupted" in r.getMessage()]
    assert len(warnings) == 1 and "1592" in warnings[0].getMessage()


def test_image_of_other_size_is_resized_to_listed_size(vg_files, caplog, vg_image):
    files = vg_files([vg_image(10, width=128, height=96)])
    Image.new("RGB", (64, 48)).save(os.path.join(files["img_dir"], "10.jpg"))
    ds = VGDataset("train", num_val_im=0, **files)
    with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark.data"):
        img, target, _ = ds[0]
        ds[0]
    assert img.shape == (3, 96, 128) and target["orig_size"] == (96, 128)
    assert len([r for r in caplog.records if "resizing" in r.getMessage()]) == 1


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("key", ["roidb_file", "dict_file", "image_file", "img_dir"])
def test_missing_file(vg_files, key, vg_image):
    files = vg_files([vg_image(10)])
    files[key] = files[key] + ".missing"
    with pytest.raises(DatasetError, match="not found") as e:
        VGDataset("train", num_val_im=0, **files)
    assert files[key] in str(e.value) and "README" in str(e.value)


def test_missing_h5_key(vg_files, vg_image):
    files = vg_files([vg_image(10)])
    with h5py.File(files["roidb_file"], "a") as f:
        del f["predicates"]
    with pytest.raises(DatasetError, match=r"no key\(s\) \['predicates'\]") as e:
        VGDataset("train", **files)
    assert files["roidb_file"] in str(e.value)


def test_broken_h5_and_json(vg_files, vg_image):
    files = vg_files([vg_image(10)])
    with open(files["roidb_file"], "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(DatasetError, match="broken"):
        VGDataset("train", **files)
    files = vg_files([vg_image(10)])
    with open(files["dict_file"], "w") as f:
        f.write('{"label_to_idx": ')
    with pytest.raises(DatasetError, match="cannot read"):
        VGDataset("train", **files)
    with open(files["dict_file"], "w") as f:
        json.dump({"predicate_to_idx": {"on": 1}}, f)
    with pytest.raises(DatasetError, match="label_to_idx"):
        VGDataset("train", **files)


def test_image_data_length_mismatch(vg_files, vg_image):
    files = vg_files([vg_image(10), vg_image(11)], extra_image_data=[{"width": 5, "height": 5,
                                                                "image_id": 3}])
    with pytest.raises(DatasetError, match="lists 3 images .* has 2 rows") as e:
        VGDataset("train", **files)
    assert files["image_file"] in str(e.value)


def test_missing_image_file(vg_files, vg_image):
    files = vg_files([vg_image(10), vg_image(11)], write_images=False)
    ds = VGDataset("train", num_val_im=0, **files)  # found lazily by default
    with pytest.raises(DatasetError, match="image file not found") as e:
        ds[1]
    assert os.path.join(files["img_dir"], "11.jpg") in str(e.value)
    with pytest.raises(DatasetError, match="2 image file"):
        VGDataset("train", num_val_im=0, check_images=True, **files)


@pytest.mark.parametrize("case, message", [
    (dict(boxes=((0, 0, 10, 10), (0, 900, 50, 1000))), "outside its image"),
    (dict(boxes=((0, 0, 10, 10), (1024, 0, 1030, 10))), "outside its image"),  # at the edge
    (dict(boxes=((0, 0, 10, 10), (20, 20, 20, 40))), "empty or outside"),
    (dict(labels=(1, 7)), "object label 7 outside the vocabulary 1..3"),
    (dict(labels=(0, 1)), "object label 0 outside"),
    (dict(rels=((0, 1, 9),)), "predicate 9 outside the vocabulary 1..3"),
    (dict(rels=((0, 2, 1),)), "refers to an object of another image"),
])
def test_inconsistent_annotations(vg_files, case, message, vg_image):
    files = vg_files([vg_image(10), vg_image(11, **case)], write_images=False)
    with pytest.raises(DatasetError, match=message) as e:
        VGDataset("train", num_val_im=0, **files)
    assert files["roidb_file"] in str(e.value) and "image_id 11" in str(e.value)


def test_16_bit_grayscale_image_is_scaled_not_clipped(vg_files, vg_image):
    files = vg_files([vg_image(10, width=64, height=48)])
    depth16 = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 .. 64491
    Image.fromarray(depth16).save(os.path.join(files["img_dir"], "10.jpg"), format="PNG")  # read as I;16
    img, _, _ = VGDataset("train", num_val_im=0, **files)[0]
    expected = torch.from_numpy(np.rint(depth16 / 257.0)).float()
    assert img.shape == (3, 48, 64)
    for channel in img:
        torch.testing.assert_close(channel * 255, expected, atol=1e-3, rtol=0)


def test_train_fraction_subsets_train_only_nested_and_seed_free(vg_files, vg_image):
    """DATASETS.TRAIN_FRACTION: val and test stay as they are, train keeps round(f * n) images of a
    fixed draw (the same for every SEED: no global generator is read), nested across fractions."""
    from maskrcnn_benchmark.data.datasets.visual_genome import train_subset
    images = [vg_image(100 + i) for i in range(23)] + [vg_image(200 + i, split=2) for i in range(3)]
    files = vg_files(images)
    val, test = ids(VGDataset("val", num_val_im=3, **files)), ids(VGDataset("test", num_val_im=3, **files))
    full = ids(VGDataset("train", num_val_im=3, **files))
    assert len(full) == 20 and full == sorted(full)
    subsets = {}
    for f in (0.25, 0.5, 1.0):
        torch.manual_seed(int(f * 100))  # the global generators do not choose the images
        np.random.seed(int(f * 100))
        subsets[f] = ids(VGDataset("train", num_val_im=3, train_fraction=f, **files))
        assert ids(VGDataset("val", num_val_im=3, train_fraction=f, **files)) == val
        assert ids(VGDataset("test", num_val_im=3, train_fraction=f, **files)) == test
    assert [len(subsets[f]) for f in (0.25, 0.5, 1.0)] == [5, 10, 20]
    assert subsets[1.0] == full
    assert set(subsets[0.25]) < set(subsets[0.5]) < set(full)
    assert subsets[0.5] == sorted(subsets[0.5]) and not set(subsets[0.5]) & set(val)
    assert subsets[0.5] != full[:10]  # a draw, not the first images
    assert ids(VGDataset("train", num_val_im=3, train_fraction=0.5, **files)) == subsets[0.5]
    # rounding: half up, at least one image
    assert len(train_subset(np.arange(10), 0.25)) == 3 and len(train_subset(np.arange(10), 0.01)) == 1
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=r"DATASETS.TRAIN_FRACTION must be in \(0, 1\]"):
            VGDataset("train", num_val_im=3, train_fraction=bad, **files)
