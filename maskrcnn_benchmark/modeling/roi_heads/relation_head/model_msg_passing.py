"""Iterative Message Passing (Xu et al. 2017, "Scene Graph Generation by Iterative Message
Passing") as SGB's IMPContext builds it: object (node) and relation (edge) GRU states exchange
gated messages for a fixed number of iterations; object and predicate logits come from the
final states."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model_motifs import MODES

__all__ = ["IMPContext", "make_fc"]


def make_fc(dim_in: int, dim_out: int) -> nn.Linear:
    """SGB's ``make_fc``: kaiming-uniform (a=1) weight, zero bias."""
    fc = nn.Linear(dim_in, dim_out)
    nn.init.kaiming_uniform_(fc.weight, a=1)
    nn.init.zeros_(fc.bias)
    return fc


def _gate(hidden_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2 * hidden_dim, 1), nn.Sigmoid())


class IMPContext(nn.Module):
    """Node and edge GRUs with message pooling.

    Initial states: obj_unary(roi feature) for objects, ReLU(edge_unary(union feature)) for
    relations. Each iteration: an edge receives its subject's and object's states, each gated by
    a sigmoid of [node, edge]; a node receives the sum over its outgoing and incoming edges,
    gated likewise (sub2rel / obj2rel pooling).

    Args:
        num_obj_classes / num_rel_classes: C and P; obj_dim: RoI feature width.
        union_dim: width of the union features it reads (CONTEXT_POOLING_DIM in SGB).
        hidden_dim: state width (SGB: 512, hard-coded; here CONTEXT_HIDDEN_DIM, default 512).
        num_iter: message-passing iterations (SGB: 3).
        mode: "predcls" builds no object classifier (SGB's obj_fc is unused there).
    """

    def __init__(self, *, num_obj_classes: int, num_rel_classes: int, obj_dim: int, union_dim: int,
                 hidden_dim: int = 512, num_iter: int = 3, mode: str = "predcls"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.num_obj_classes, self.hidden_dim, self.num_iter, self.mode = num_obj_classes, hidden_dim, num_iter, mode
        self.rel_fc = make_fc(hidden_dim, num_rel_classes)
        self.obj_fc = make_fc(hidden_dim, num_obj_classes) if mode != "predcls" else None
        self.obj_unary = make_fc(obj_dim, hidden_dim)
        self.edge_unary = make_fc(union_dim, hidden_dim)
        self.edge_gru = nn.GRUCell(input_size=hidden_dim, hidden_size=hidden_dim)
        self.node_gru = nn.GRUCell(input_size=hidden_dim, hidden_size=hidden_dim)
        self.sub_vert_w_fc, self.obj_vert_w_fc = _gate(hidden_dim), _gate(hidden_dim)
        self.out_edge_w_fc, self.in_edge_w_fc = _gate(hidden_dim), _gate(hidden_dim)

    def initial_states(self, roi_features: Tensor, union_features: Tensor) -> Tuple[Tensor, Tensor]:
        """-> (object inputs [N, H], edge inputs [R, H]) of the first GRU step."""
        return self.obj_unary(roi_features), F.relu(self.edge_unary(union_features))

    def message_passing(self, obj_rep: Tensor, rel_rep: Tensor, pair_idxs: Tensor) -> Tuple[Tensor, Tensor]:
        """obj_rep [N, H], rel_rep [R, H], pair_idxs Int64[R, 2] (batch-global) -> final
        (node states [N, H], edge states [R, H]). Called by the forward pass and by the
        alignment mirror (on masked initial states)."""
        n, r = obj_rep.shape[0], rel_rep.shape[0]
        sub, obj = pair_idxs[:, 0], pair_idxs[:, 1]
        vert = self.node_gru(obj_rep, obj_rep.new_zeros(n, self.hidden_dim))
        edge = self.edge_gru(rel_rep, rel_rep.new_zeros(r, self.hidden_dim))
        for _ in range(self.num_iter):
            sub_vert, obj_vert = vert[sub], vert[obj]
            weighted_sub = self.sub_vert_w_fc(torch.cat([sub_vert, edge], 1)) * sub_vert
            weighted_obj = self.obj_vert_w_fc(torch.cat([obj_vert, edge], 1)) * obj_vert
            new_edge = self.edge_gru(weighted_sub + weighted_obj, edge)
            pre_out = self.out_edge_w_fc(torch.cat([sub_vert, edge], 1)) * edge
            pre_in = self.in_edge_w_fc(torch.cat([obj_vert, edge], 1)) * edge
            zeros = pre_out.new_zeros(n, self.hidden_dim)
            vert_ctx = zeros.index_add(0, sub, pre_out).index_add(0, obj, pre_in.to(zeros.dtype))
            vert, edge = self.node_gru(vert_ctx, vert), new_edge
        return vert, edge
