"""VCTree's trees and tree-LSTMs (SGB's utils_vctree.py / utils_treelstm.py), batched: all the
trees of a batch are one forest, and the tree-LSTMs process it one depth level at a time."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["BinaryForest", "MultiLayerBiTreeLSTM", "TreeLSTMBackward", "TreeLSTMForward", "build_forest",
           "overlap_info"]


@dataclass
class BinaryForest:
    """One binary tree per image over the batch's objects (indices image-major, N = "none").

    Attributes:
        num_nodes: N.
        left / right / parent: Int64[N] left child, right child, parent of each node (N if none).
        levels: node indices by depth, root level first (every image's nodes of that depth).
    """

    num_nodes: int
    left: Tensor
    right: Tensor
    parent: Tensor
    levels: List[Tensor]


def _maximum_spanning_tree(score: np.ndarray) -> List[List[int]]:
    """SGB's VCTree construction: the root is the object with the highest mean score; then the
    pair (tree node, remaining object) of highest score attaches that object, until all are in.
    -> children of each node in insertion order, and the root (appended last)."""
    n = score.shape[0]
    root = int(np.argmax(score.mean(1)))
    children: List[List[int]] = [[] for _ in range(n)]
    selected, remaining = [root], [i for i in range(n) if i != root]
    while remaining:
        sub = score[np.ix_(selected, remaining)]
        best = int(np.argmax(sub))  # first maximum in row-major order
        parent, child = selected[best // len(remaining)], remaining[best % len(remaining)]
        children[parent].append(child)
        selected.append(child)
        remaining.remove(child)
    return children + [[root]]


def build_forest(pair_scores: Sequence[Tensor], device=None) -> BinaryForest:
    """Per-image score matrices [n_i, n_i] -> the batch's forest of binary trees.

    Each image's maximum spanning tree (:func:`_maximum_spanning_tree`) becomes a binary tree as
    SGB's ``arbForest_to_biForest``: a node's first child is its left child, each further child
    the right child of the previous one.
    """
    num = sum(int(s.shape[0]) for s in pair_scores)
    left, right, parent = np.full(num, num), np.full(num, num), np.full(num, num)
    depth = np.zeros(num, dtype=np.int64)
    offset = 0
    for s in pair_scores:
        n = int(s.shape[0])
        if n == 0:
            continue
        *children, (root,) = _maximum_spanning_tree(s.detach().float().cpu().numpy())
        for node, kids in enumerate(children):
            prev = node
            for k, child in enumerate(kids):
                if k == 0:
                    left[node + offset] = child + offset
                else:
                    right[prev + offset] = child + offset
                parent[child + offset] = prev + offset
                prev = child
        stack = [root + offset]
        while stack:  # depths, root = 0
            node = stack.pop()
            for c in (left[node], right[node]):
                if c < num:
                    depth[c] = depth[node] + 1
                    stack.append(c)
        offset += n
    levels = [torch.from_numpy(np.nonzero(depth == d)[0]).to(device) for d in range(int(depth.max(initial=-1)) + 1)]
    as_t = lambda a: torch.from_numpy(a.astype(np.int64)).to(device)  # noqa: E731
    return BinaryForest(num, as_t(left), as_t(right), as_t(parent), levels)


def _block_orthogonal(weight: Tensor, block: Sequence[int]) -> None:
    """SGB's ``block_orthogonal``: an orthogonal init of each [block[0], block[1]] block."""
    with torch.no_grad():
        for i in range(0, weight.shape[0], block[0]):
            for j in range(0, weight.shape[1], block[1]):
                nn.init.orthogonal_(weight[i:i + block[0], j:j + block[1]])


def _dropout_mask(p: float, width: int, like: Tensor, training: bool) -> Optional[Tensor]:
    """One recurrent dropout mask [1, width] for every node (SGB's get_dropout_mask)."""
    if not training or p <= 0:
        return None
    return (torch.rand(1, width, device=like.device) > p).to(like.dtype) / (1.0 - p)


class TreeLSTMForward(nn.Module):
    """From the leaves to the root: a node reads its input and both children's states."""

    def __init__(self, feat_dim: int, h_dim: int, dropout: float = 0.0):
        super().__init__()
        self.h_dim, self.dropout = h_dim, dropout
        self.px = nn.Linear(feat_dim, h_dim)
        self.ioffux = nn.Linear(feat_dim, 6 * h_dim)
        self.ioffuh_left = nn.Linear(h_dim, 6 * h_dim)
        self.ioffuh_right = nn.Linear(h_dim, 6 * h_dim)
        for lin, block in ((self.px, feat_dim), (self.ioffux, feat_dim), (self.ioffuh_left, h_dim),
                           (self.ioffuh_right, h_dim)):
            _block_orthogonal(lin.weight, [h_dim, block])
            nn.init.zeros_(lin.bias)
        with torch.no_grad():
            self.ioffuh_left.bias[2 * h_dim:4 * h_dim].fill_(0.5)
            self.ioffuh_right.bias[2 * h_dim:4 * h_dim].fill_(0.5)

    def forward(self, forest: BinaryForest, x: Tensor) -> Tensor:
        """x [N, feat_dim] -> hidden states [N, h_dim]."""
        n = forest.num_nodes
        h, c = x.new_zeros(n + 1, self.h_dim), x.new_zeros(n + 1, self.h_dim)
        mask = _dropout_mask(self.dropout, self.h_dim, x, self.training)
        for idx in reversed(forest.levels):
            left, right = forest.left[idx], forest.right[idx]
            gates = self.ioffux(x[idx]) + self.ioffuh_left(h[left]) + self.ioffuh_right(h[right])
            i, o, f_l, f_r, u, r = gates.chunk(6, dim=1)
            cell = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f_l) * c[left] + torch.sigmoid(f_r) * c[right]
            r = torch.sigmoid(r)
            out = r * (torch.sigmoid(o) * torch.tanh(cell)) + (1 - r) * self.px(x[idx])
            if mask is not None:
                out = out * mask
            h, c = h.index_copy(0, idx, out.to(h.dtype)), c.index_copy(0, idx, cell.to(c.dtype))  # (autocast)
        return h[:n]


class TreeLSTMBackward(nn.Module):
    """From the root to the leaves: a node reads its input and its parent's state. With
    ``label_embed`` / ``label_out`` it is SGB's object decoder: each node also reads its parent's
    label embedding (the start token at the root) and predicts its own label."""

    def __init__(self, feat_dim: int, h_dim: int, dropout: float = 0.0, label_embed: Optional[nn.Embedding] = None,
                 label_out: Optional[nn.Linear] = None):
        super().__init__()
        self.h_dim, self.dropout = h_dim, dropout
        self.label_embed, self.label_out = label_embed, label_out
        self.px = nn.Linear(feat_dim, h_dim)
        self.iofux = nn.Linear(feat_dim, 5 * h_dim)
        self.iofuh = nn.Linear(h_dim, 5 * h_dim)
        for lin, block in ((self.px, feat_dim), (self.iofux, feat_dim), (self.iofuh, h_dim)):
            _block_orthogonal(lin.weight, [h_dim, block])
            nn.init.zeros_(lin.bias)
        with torch.no_grad():
            self.iofuh.bias[2 * h_dim:3 * h_dim].fill_(1.0)

    def forward(self, forest: BinaryForest, x: Tensor):
        """x [N, D] -> hidden [N, h_dim]; as a decoder -> (logits [N, C], labels Int64[N])."""
        n = forest.num_nodes
        h, c = x.new_zeros(n + 1, self.h_dim), x.new_zeros(n + 1, self.h_dim)
        mask = _dropout_mask(self.dropout, self.h_dim, x, self.training)
        decode = self.label_out is not None
        if decode:
            emb = torch.cat([x.new_zeros(n, self.label_embed.embedding_dim), self.label_embed.weight[:1]])
            logits = x.new_zeros(n, self.label_out.out_features)
            labels = torch.zeros(n, dtype=torch.int64, device=x.device)
        for idx in forest.levels:
            par = forest.parent[idx]
            inp = torch.cat([x[idx], emb[par]], 1) if decode else x[idx]
            i, o, f, u, r = (self.iofux(inp) + self.iofuh(h[par])).chunk(5, dim=1)
            cell = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f) * c[par]
            r = torch.sigmoid(r)
            out = r * (torch.sigmoid(o) * torch.tanh(cell)) + (1 - r) * self.px(inp)
            if mask is not None:
                out = out * mask
            h, c = h.index_copy(0, idx, out.to(h.dtype)), c.index_copy(0, idx, cell.to(c.dtype))
            if decode:
                dist = self.label_out(out)
                best = dist[:, 1:].argmax(1) + 1
                # training embeds a label sampled from the prediction (SGB), test the argmax
                passed = torch.softmax(dist.float(), 1)[:, 1:].multinomial(1).view(-1) + 1 if self.training else best
                emb = emb.index_copy(0, idx, self.label_embed(passed.detach() + 1).to(emb.dtype))
                logits, labels = logits.index_copy(0, idx, dist.to(logits.dtype)), labels.index_copy(0, idx, best)
        return (logits, labels) if decode else h[:n]


class MultiLayerBiTreeLSTM(nn.Module):
    """SGB's MultiLayer_BTreeLSTM: layers of [forward ; backward] tree-LSTMs, out_dim / 2 each."""

    def __init__(self, in_dim: int, out_dim: int, num_layer: int, dropout: float = 0.0):
        super().__init__()
        dims = [in_dim] + [out_dim] * (num_layer - 1)
        self.layers = nn.ModuleList([nn.ModuleDict({"fwd": TreeLSTMForward(d, out_dim // 2, dropout),
                                                    "bwd": TreeLSTMBackward(d, out_dim // 2, dropout)})
                                     for d in dims])

    def forward(self, forest: BinaryForest, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = torch.cat([layer["fwd"](forest, x), layer["bwd"](forest, x)], 1)
        return x


def overlap_info(boxes: Tensor) -> Tensor:
    """SGB's get_overlap_info for one image: [n, 6] (number of boxes it intersects, summed
    intersection / 1024^2, summed IoU, their means per intersecting box, own area / 1024^2), with
    SGB's "+1" box widths."""
    scale = 1024.0 * 1024.0
    b = boxes.float()
    lt = torch.max(b[:, None, :2], b[None, :, :2])
    rb = torch.min(b[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt + 1.0).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area = (b[:, 2] - b[:, 0] + 1.0) * (b[:, 3] - b[:, 1] + 1.0)
    iou = inter / (area[:, None] + area[None, :] - inter + 1e-9)
    count = (inter > 0).float().sum(1, keepdim=True)
    inter_sum, iou_sum = inter.sum(1, keepdim=True) / scale, iou.sum(1, keepdim=True)
    plain_area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).view(-1, 1) / scale  # SGB: no +1 here
    return torch.cat([count, inter_sum, iou_sum, inter_sum / (count + 1e-9), iou_sum / (count + 1e-9),
                      plain_area], 1)
