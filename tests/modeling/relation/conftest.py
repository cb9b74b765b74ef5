"""Tiny configs and random batches for the relation-stage tests (C=7 object, P=5 predicate classes)."""
import pytest
import torch

from maskrcnn_benchmark.config import get_cfg

NUM_OBJ, NUM_REL = 7, 5


def tiny_cfg(mode: str = "predcls"):
    """A mutable config with CPU sizes (the same code path as the full-size one)."""
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RELATION_ON = True
    cfg.MODEL.BACKBONE.WIDTH_DIVISOR = 16  # 32 channels
    cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 0
    cfg.MODEL.RPN.PRE_NMS_TOP_N_TEST = 200
    cfg.MODEL.RPN.POST_NMS_TOP_N_TEST = 50
    cfg.MODEL.ROI_HEADS.SCORE_THRESH = 0.0
    cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMG = 8
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = NUM_OBJ
    cfg.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 16
    h = cfg.MODEL.ROI_RELATION_HEAD
    h.USE_GT_BOX = mode != "sgdet"
    h.USE_GT_OBJECT_LABEL = mode == "predcls"
    h.NUM_CLASSES = NUM_REL
    h.EMBED_DIM, h.CONTEXT_HIDDEN_DIM, h.CONTEXT_POOLING_DIM, h.POS_EMBED_DIM = 8, 12, 20, 10
    h.BATCH_SIZE_PER_IMAGE = 16
    h.PAIR_CHUNK_SIZE = 5
    t = h.TRANSFORMER  # TransformerPredictor: 1 object block, 2 edge blocks, 2 heads
    t.OBJ_LAYER, t.REL_LAYER, t.NUM_HEAD, t.INNER_DIM, t.KEY_DIM, t.VAL_DIM = 1, 2, 2, 16, 4, 4
    return cfg


def random_boxes(n: int, height: int = 64, width: int = 96, generator=None) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * torch.tensor([width * 0.6, height * 0.6])
    wh = torch.rand(n, 2, generator=generator) * torch.tensor([width * 0.35, height * 0.35]) + 6
    return torch.cat([xy, xy + wh], 1)


def random_targets(counts=(5, 3), seed: int = 0, sizes=((64, 96), (64, 96))):
    g = torch.Generator().manual_seed(seed)
    targets = []
    for n, (h, w) in zip(counts, sizes):
        rels = [[i, (i + 1) % n, 1 + (i % (NUM_REL - 1))] for i in range(n)] if n > 1 else []
        targets.append({"boxes": random_boxes(n, h, w, g),
                        "labels": torch.randint(1, NUM_OBJ, (n,), generator=g),
                        "relation_tuples": torch.tensor(rels, dtype=torch.int64).view(-1, 3),
                        "image_size": (h, w)})
    return targets


def gt_proposals(targets, mode: str, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in targets:
        p = {"boxes": t["boxes"], "labels": t["labels"]}
        if mode != "predcls":
            p["class_logits"] = torch.randn(t["boxes"].shape[0], NUM_OBJ, generator=g)
        out.append(p)
    return out


def statistics(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {"pred_dist": torch.randn(NUM_OBJ, NUM_OBJ, NUM_REL, generator=g)}


@pytest.fixture
def make_cfg():
    return tiny_cfg


@pytest.fixture
def make_batch():
    """-> (features [2, 32, 4, 6], image_sizes, targets, proposals(mode))."""
    def make(mode="predcls", counts=(5, 3), seed=0):
        targets = random_targets(counts, seed)
        feats = torch.randn(len(counts), 32, 4, 6, generator=torch.Generator().manual_seed(seed))
        sizes = [t["image_size"] for t in targets]
        return feats, sizes, targets, gt_proposals(targets, mode, seed + 1)
    return make


@pytest.fixture
def stats():
    return statistics()
