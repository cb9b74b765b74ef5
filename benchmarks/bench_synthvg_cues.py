"""Does SynthVG need the image? Frequency prior vs a small CNN on the pair's pixels (PredCls).

    python benchmarks/bench_synthvg_cues.py [--data-dir datasets] [--num-val-im 200]
        [--epochs 6] [--threads 2]

On the ground-truth pairs of the test split (each annotated relation once), it prints the
per-predicate top-1 recall and its mean over predicates (mR, the quantity mR@K rewards) of
(a) the frequency prior alone: argmax of fg_matrix[subject class, object class, 1:]
(SGB's statistics of the train split), and (b) the same prior as a bias plus a small CNN that
sees the pair's pixels, as Motifs does (the union box with subject and object masks, and the
subject and object boxes, each resized to 32 x 32) and both class embeddings, trained a few
epochs on the train split. A dataset whose specific predicates hang on visible
cues shows (b) clearly above (a).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
from maskrcnn_benchmark.data.datasets.visual_genome import VGDataset
from maskrcnn_benchmark.data.statistics import compute_statistics

S = 32  # crop side


def pairs_of(ds: VGDataset, limit: int = 0):
    """(crops uint8[R, 11, S, S]: union RGB, subject and object masks, subject RGB, object
    RGB; subject/object classes int64[R, 2]; predicates int64[R])"""
    crops, classes, preds = [], [], []
    for i in range(len(ds)):
        gt = ds.get_groundtruth(i)
        if not len(gt["relations"]):
            continue
        img = Image.open(ds.image_path(i)).convert("RGB")
        for s, o, p in gt["relations"].tolist():
            bs, bo = gt["boxes"][s], gt["boxes"][o]
            u = np.concatenate([np.minimum(bs[:2], bo[:2]), np.maximum(bs[2:], bo[2:])])
            crop = np.asarray(img.resize((S, S), Image.BILINEAR, box=tuple(u.tolist())))
            sx, sy = S / max(u[2] - u[0], 1), S / max(u[3] - u[1], 1)
            masks = np.zeros((2, S, S), np.uint8)
            for m, b in zip(masks, (bs, bo)):
                x1, y1 = int((b[0] - u[0]) * sx), int((b[1] - u[1]) * sy)
                x2, y2 = int(np.ceil((b[2] - u[0]) * sx)), int(np.ceil((b[3] - u[1]) * sy))
                m[y1:y2, x1:x2] = 255
            own = [np.asarray(img.resize((S, S), Image.BILINEAR, box=tuple(b.tolist())))
                   .transpose(2, 0, 1) for b in (bs, bo)]
            crops.append(np.concatenate([crop.transpose(2, 0, 1), masks] + own))
            classes.append((gt["labels"][s], gt["labels"][o]))
            preds.append(p)
        if limit and len(preds) >= limit:
            break
    return (torch.from_numpy(np.stack(crops)), torch.tensor(classes, dtype=torch.int64),
            torch.tensor(preds, dtype=torch.int64))


class PairNet(nn.Module):
    def __init__(self, num_obj: int, num_rel: int, prior: torch.Tensor):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(11, 48, 3, padding=1), nn.BatchNorm2d(48), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(48, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (S // 8) ** 2, 256), nn.ReLU())
        self.embed = nn.Embedding(num_obj, 32)
        self.out = nn.Linear(256 + 64, num_rel)
        self.register_buffer("prior", prior)  # [C, C, P] log frequencies

    def forward(self, crops, classes):
        x = self.conv(crops.float() / 255)
        e = self.embed(classes).flatten(1)
        return self.out(torch.cat([x, e], 1)) + self.prior[classes[:, 0], classes[:, 1]]


def per_predicate_recall(pred: torch.Tensor, gt: torch.Tensor, num_rel: int) -> np.ndarray:
    rec = np.full(num_rel, np.nan)
    for p in range(1, num_rel):
        m = gt == p
        if m.any():
            rec[p] = (pred[m] == p).float().mean().item()
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="datasets")
    ap.add_argument("--num-val-im", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    t0 = time.time()
    sets = {}
    for split in ("train", "test"):
        args = DatasetCatalog.get(f"synthvg_{split}", a.data_dir)
        args.pop("split")
        sets[split] = VGDataset(split, num_val_im=a.num_val_im, filter_duplicate_rels=False,
                                **args)
    stats = compute_statistics(sets["train"])
    names = stats["rel_classes"]
    num_obj, num_rel = len(stats["obj_classes"]), len(names)
    train, test = pairs_of(sets["train"]), pairs_of(sets["test"])
    print(f"{len(train[2])} train / {len(test[2])} test relations, crops in "
          f"{time.time() - t0:.0f} s")

    fg = stats["fg_matrix"].clone().float()
    fg[:, :, 0] = -1  # never predict background
    prior_pred = fg[test[1][:, 0], test[1][:, 1]].argmax(1)
    net = PairNet(num_obj, num_rel, stats["pred_dist"])
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    n = len(train[2])
    t1 = time.time()
    for epoch in range(a.epochs):
        net.train()
        for idx in torch.randperm(n).split(128):
            loss = F.cross_entropy(net(train[0][idx], train[1][idx]), train[2][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(c, k) for c, k in zip(test[0].split(512), test[1].split(512))])
        logits[:, 0] = -1e9
        cnn_pred = logits.argmax(1)
    print(f"CNN trained {a.epochs} epochs in {time.time() - t1:.0f} s")
    r_prior = per_predicate_recall(prior_pred, test[2], num_rel)
    r_cnn = per_predicate_recall(cnn_pred, test[2], num_rel)
    counts = torch.bincount(test[2], minlength=num_rel)
    print(f"{'predicate':14s} {'test n':>6s} {'prior':>6s} {'CNN':>6s}")
    for p in np.argsort(-counts.numpy()):
        if p > 0 and counts[p]:
            print(f"{names[p]:14s} {int(counts[p]):6d} {r_prior[p]:6.2f} {r_cnn[p]:6.2f}")
    print(f"mean over predicates (mR): prior {np.nanmean(r_prior[1:]):.3f}, "
          f"prior + CNN {np.nanmean(r_cnn[1:]):.3f}; accuracy: prior "
          f"{(prior_pred == test[2]).float().mean():.3f}, prior + CNN "
          f"{(cnn_pred == test[2]).float().mean():.3f}")


if __name__ == "__main__":
    main()
