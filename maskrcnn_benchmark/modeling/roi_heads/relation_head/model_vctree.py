"""VCTree's context (Tang et al. 2019, "Learning to Compose Dynamic Tree Structures for Visual
Contexts", as SGB's VCTreeLSTMContext builds it): a pairwise score matrix per image, its
maximum spanning tree as a binary tree, and bidirectional tree-LSTMs for object and edge context."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model_motifs import MODES
from .pair_head import xavier
from .utils_motifs import encode_box_info, to_onehot
from .utils_vctree import BinaryForest, MultiLayerBiTreeLSTM, TreeLSTMBackward, build_forest, overlap_info

__all__ = ["VCTreeContextOutput", "VCTreeLSTMContext", "binary_loss"]


def _run(seq: nn.Sequential, x: Tensor) -> Tensor:
    """``seq(x)``, with BatchNorm on its running statistics for a training batch of one row."""
    for m in seq:
        if isinstance(m, nn.BatchNorm1d) and m.training and x.shape[0] < 2:
            x = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, training=False, eps=m.eps)
        else:
            x = m(x)
    return x


class VCTreeContextOutput(NamedTuple):
    """What :class:`VCTreeLSTMContext` returns; every per-object tensor is image-major."""

    obj_dists: Tensor  # [N, C]
    obj_preds: Tensor  # Int64[N] labels of the edge context and the frequency bias
    edge_ctx: Tensor  # [N, hidden]
    edge_input: Tensor  # [N, embed + obj_dim + hidden] what the edge tree-LSTM consumed
    forest: BinaryForest
    binary_logits: List[Tensor]  # per image [n_i, n_i]: the score matrix trained by binary_loss


class VCTreeLSTMContext(nn.Module):
    """Object and edge context of SGB's VCTreePredictor.

    Score net: [obj_reduce(roi), emb_reduce(class embedding), box_embed, overlap_embed] (inputs
    detached) -> score_pre -> subject / object branches; per image pair (i, j):
    sigmoid(vision_prior([s*o, s, o, co])) * co, with co the class co-occurrence prior
    ``bi_freq_prior`` of the two class distributions (initialised from pred_dist summed over
    predicates, symmetrised, as SGB). Its sigmoid is the score matrix the tree is built from.
    obj_ctx tree-LSTM over [roi, class embedding, position embedding]; object decoder tree-LSTM
    (SGCls / SGDet); edge tree-LSTM over [obj_embed2(label), roi, object context].

    Args:
        num_obj_classes: C; obj_dim: RoI feature width; mode: "predcls" | "sgcls" | "sgdet".
        embed_dim / hidden_dim / pos_dim: EMBED_DIM, CONTEXT_HIDDEN_DIM, POS_EMBED_DIM (128).
        dropout_rate: CONTEXT_DROPOUT_RATE (the decoder's, and multi-layer tree-LSTMs').
        obj_layers / edge_layers: CONTEXT_OBJ_LAYER / CONTEXT_REL_LAYER.
        pred_dist: FloatTensor[C, C, P] (statistics); zeros when None (then from a checkpoint).
    """

    def __init__(self, *, num_obj_classes: int, obj_dim: int, mode: str = "predcls", embed_dim: int = 200,
                 hidden_dim: int = 512, pos_dim: int = 128, dropout_rate: float = 0.2, obj_layers: int = 1,
                 edge_layers: int = 1, pred_dist: Optional[Tensor] = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if obj_layers < 1 or edge_layers < 1:
            raise ValueError("CONTEXT_OBJ_LAYER and CONTEXT_REL_LAYER must be >= 1")
        c = num_obj_classes
        self.num_obj_classes, self.mode, self.hidden_dim = c, mode, hidden_dim
        self.obj_embed1, self.obj_embed2 = nn.Embedding(c, embed_dim), nn.Embedding(c, embed_dim)
        bn = dict(momentum=0.001)
        self.pos_embed = nn.Sequential(nn.Linear(9, 32), nn.BatchNorm1d(32, **bn), nn.Linear(32, pos_dim),
                                       nn.ReLU(inplace=True))
        self.overlap_embed = nn.Sequential(nn.Linear(6, 128), nn.BatchNorm1d(128, **bn), nn.ReLU(inplace=True))
        self.box_embed = nn.Sequential(nn.Linear(9, 128), nn.BatchNorm1d(128, **bn), nn.ReLU(inplace=True))
        self.bi_freq_prior = nn.Linear(c * c, 1, bias=False)
        with torch.no_grad():
            if pred_dist is None:
                self.bi_freq_prior.weight.zero_()
            else:
                co = pred_dist.float().sum(-1)
                self.bi_freq_prior.weight.copy_((co + co.t()).reshape(1, -1))
        self.obj_reduce = xavier(nn.Linear(obj_dim, 128))
        self.emb_reduce = xavier(nn.Linear(embed_dim, 128))
        self.score_pre = xavier(nn.Linear(128 * 4, hidden_dim))
        self.score_sub = xavier(nn.Linear(hidden_dim, hidden_dim))
        self.score_obj = xavier(nn.Linear(hidden_dim, hidden_dim))
        self.vision_prior = nn.Linear(hidden_dim * 3 + 1, 1)
        obj_in = obj_dim + embed_dim + pos_dim
        self.obj_ctx_rnn = MultiLayerBiTreeLSTM(obj_in, hidden_dim, obj_layers,
                                                dropout_rate if obj_layers > 1 else 0.0)
        self.decoder_rnn = None
        if mode != "predcls":  # SGB's DecoderTreeLSTM ("backward": root to leaves)
            self.decoder_rnn = TreeLSTMBackward(
                hidden_dim + obj_in + embed_dim, hidden_dim, dropout_rate,
                label_embed=nn.Embedding(c + 1, embed_dim), label_out=nn.Linear(hidden_dim, c))
        self.edge_ctx_rnn = MultiLayerBiTreeLSTM(embed_dim + obj_dim + hidden_dim, hidden_dim, edge_layers,
                                                 dropout_rate if edge_layers > 1 else 0.0)

    def score_matrices(self, score_input: Tensor, obj_probs: Tensor, num_objs: Sequence[int]) -> List[Tensor]:
        """-> per image the score-net logits [n_i, n_i] (row i, column j: object i, subject j)."""
        feat = F.relu(self.score_pre(score_input))
        sub, obj = F.relu(self.score_sub(feat)), F.relu(self.score_obj(feat))
        c = self.num_obj_classes
        prior = self.bi_freq_prior.weight.view(c, c)
        out = []
        for s, o, p in zip(sub.split(num_objs), obj.split(num_objs), obj_probs.split(num_objs)):
            n = s.shape[0]
            s_, o_ = s.unsqueeze(0).expand(n, n, -1), o.unsqueeze(1).expand(n, n, -1)
            co = (p @ prior @ p.t()).unsqueeze(-1)  # [i, j] = sum_ab p_i[a] W[a, b] p_j[b]
            vis = self.vision_prior(torch.cat([s_ * o_, s_, o_, co], -1)).squeeze(-1)
            out.append(torch.sigmoid(vis) * co.squeeze(-1))
        return out

    def edge_context(self, edge_input: Tensor, forest: BinaryForest) -> Tensor:
        """The edge tree-LSTM: [N, embed + obj_dim + hidden] -> [N, hidden]; run by the forward
        pass and again, on masked input and the same trees, by the alignment mirror."""
        return self.edge_ctx_rnn(forest, edge_input)

    def forward(self, roi_features: Tensor, boxes: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]],
                obj_labels: Optional[Tensor] = None, obj_logits: Optional[Tensor] = None) -> VCTreeContextOutput:
        """As :meth:`LSTMContext.forward` (no late NMS here: the predictor applies it)."""
        num_objs = [int(b.shape[0]) for b in boxes]
        if self.mode == "predcls":
            if obj_labels is None:
                raise ValueError("VCTreeLSTMContext (predcls) needs obj_labels")
            obj_embed = self.obj_embed1(obj_labels.long())
            obj_logits = to_onehot(obj_labels, self.num_obj_classes)
        else:
            if obj_logits is None:
                raise ValueError(f"VCTreeLSTMContext ({self.mode}) needs the detector's class logits")
            obj_logits = obj_logits.detach().float()
            obj_embed = torch.softmax(obj_logits, 1) @ self.obj_embed1.weight
        info = encode_box_info(boxes, image_sizes).to(roi_features.device)
        obj_rep = torch.cat([roi_features, obj_embed, _run(self.pos_embed, info)], -1)
        overlaps = torch.cat([overlap_info(b) for b in boxes]).to(roi_features.device)
        score_in = torch.cat([self.obj_reduce(roi_features.detach()), self.emb_reduce(obj_embed.detach()),
                              _run(self.box_embed, info), _run(self.overlap_embed, overlaps)], -1)
        binary_logits = self.score_matrices(score_in, torch.softmax(obj_logits, -1), num_objs)
        forest = build_forest([torch.sigmoid(s) for s in binary_logits], roi_features.device)

        obj_ctx = self.obj_ctx_rnn(forest, obj_rep)
        if self.mode == "predcls":
            obj_preds = obj_labels.long()
            obj_dists = to_onehot(obj_preds, self.num_obj_classes)
        else:
            obj_dists, obj_preds = self.decoder_rnn(forest, torch.cat([obj_rep, obj_ctx], 1))
        edge_input = torch.cat([self.obj_embed2(obj_preds), roi_features, obj_ctx], -1)
        return VCTreeContextOutput(obj_dists, obj_preds, self.edge_context(edge_input, forest), edge_input,
                                   forest, binary_logits)


def binary_loss(binary_logits: Sequence[Tensor], rel_pair_idxs: Sequence[Tensor],
                rel_labels: Optional[Sequence[Tensor]]) -> Tensor:
    """VCTree's score-matrix loss: mean over images of BCE(logits [n, n], related-pair matrix)."""
    if rel_labels is None:
        raise ValueError("VCTreePredictor needs the sampled relation labels in training")
    terms = []
    for logits, pairs, labels in zip(binary_logits, rel_pair_idxs, rel_labels):
        if logits.numel() == 0:
            continue
        target = torch.zeros_like(logits)
        fg = pairs[labels.to(pairs.device) > 0].long()
        target[fg[:, 0], fg[:, 1]] = 1.0
        target[fg[:, 1], fg[:, 0]] = 1.0
        terms.append(F.binary_cross_entropy_with_logits(logits, target))
    return torch.stack(terms).mean() if terms else sum(x.sum() for x in binary_logits) * 0.0
