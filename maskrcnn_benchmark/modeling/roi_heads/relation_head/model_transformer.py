"""The Transformer context of SGB's TransformerPredictor: multi-head self-attention encoders over
the objects of each image, one for object context and one for edge context (Vaswani et al. 2017,
as SGB builds it, batched over images with padding masks)."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from .alignment import random_attention_mask
from .model_motifs import MODES
from .utils_motifs import encode_box_info, obj_prediction_nms, to_onehot

__all__ = ["MultiHeadAttention", "TransformerContext", "TransformerContextOutput", "TransformerEncoder"]


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, residual and LayerNorm (SGB's layout).

    Args:
        n_head / d_model / d_k / d_v: heads, model width, query-key and value widths per head.
        dropout: on the output projection; the attention weights get SGB's fixed 0.1.
    """

    def __init__(self, n_head: int, d_model: int, d_k: int, d_v: int, dropout: float = 0.1):
        super().__init__()
        self.n_head, self.d_k, self.d_v = n_head, d_k, d_v
        self.w_qs = nn.Linear(d_model, n_head * d_k)
        self.w_ks = nn.Linear(d_model, n_head * d_k)
        self.w_vs = nn.Linear(d_model, n_head * d_v)
        nn.init.normal_(self.w_qs.weight, mean=0, std=(2.0 / (d_model + d_k)) ** 0.5)
        nn.init.normal_(self.w_ks.weight, mean=0, std=(2.0 / (d_model + d_k)) ** 0.5)
        nn.init.normal_(self.w_vs.weight, mean=0, std=(2.0 / (d_model + d_v)) ** 0.5)
        self.temperature = d_k ** 0.5
        self.attn_dropout = nn.Dropout(0.1)
        self.layer_norm = nn.LayerNorm(d_model)
        self.fc = nn.Linear(n_head * d_v, d_model)
        nn.init.xavier_normal_(self.fc.weight)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_pad: Tensor, attn_mask_prob: float = 0.0) -> Tensor:
        """x [B, L, D], key_pad Bool[B, 1, L] (True: padding) -> [B, L, D].

        ``attn_mask_prob`` > 0 (the alignment mirror): each attention logit is also set to -inf
        with that probability before the softmax, never a whole row (a fresh draw per call).
        """
        b, length, _ = x.shape
        h = self.n_head
        q = self.w_qs(x).view(b, length, h, self.d_k).permute(2, 0, 1, 3).reshape(h * b, length, self.d_k)
        k = self.w_ks(x).view(b, length, h, self.d_k).permute(2, 0, 1, 3).reshape(h * b, length, self.d_k)
        v = self.w_vs(x).view(b, length, h, self.d_v).permute(2, 0, 1, 3).reshape(h * b, length, self.d_v)
        mask = key_pad.repeat(h, 1, 1).expand(h * b, length, length)  # head-major, as q / k / v
        drawn = random_attention_mask((h * b, length, length), attn_mask_prob, x.device, invalid=mask)
        if drawn is not None:
            mask = mask | drawn
        attn = torch.bmm(q, k.transpose(1, 2)) / self.temperature
        attn = self.attn_dropout(torch.softmax(attn.masked_fill(mask, float("-inf")), dim=2))
        out = torch.bmm(attn, v).view(h, b, length, self.d_v).permute(1, 2, 0, 3).reshape(b, length, h * self.d_v)
        return self.layer_norm(self.dropout(self.fc(out)) + x)


class PositionwiseFeedForward(nn.Module):
    """Two position-wise layers (SGB's kernel-1 Conv1d pair, as Linear), residual and LayerNorm."""

    def __init__(self, d_in: int, d_hid: int, dropout: float = 0.1):
        super().__init__()
        self.w_1 = nn.Linear(d_in, d_hid)
        self.w_2 = nn.Linear(d_hid, d_in)
        self.layer_norm = nn.LayerNorm(d_in)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer_norm(self.dropout(self.w_2(F.relu(self.w_1(x)))) + x)


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward; padded positions zeroed after each."""

    def __init__(self, d_model: int, d_inner: int, n_head: int, d_k: int, d_v: int, dropout: float = 0.1):
        super().__init__()
        self.slf_attn = MultiHeadAttention(n_head, d_model, d_k, d_v, dropout=dropout)
        self.pos_ffn = PositionwiseFeedForward(d_model, d_inner, dropout=dropout)

    def forward(self, x: Tensor, key_pad: Tensor, non_pad: Tensor, attn_mask_prob: float = 0.0) -> Tensor:
        x = self.slf_attn(x, key_pad, attn_mask_prob) * non_pad
        return self.pos_ffn(x) * non_pad


class TransformerEncoder(nn.Module):
    """A stack of encoder layers over the objects of each image (images padded to one length)."""

    def __init__(self, n_layers: int, n_head: int, d_k: int, d_v: int, d_model: int, d_inner: int,
                 dropout: float = 0.1):
        super().__init__()
        self.layer_stack = nn.ModuleList([EncoderLayer(d_model, d_inner, n_head, d_k, d_v, dropout)
                                          for _ in range(n_layers)])

    def forward(self, x: Tensor, num_objs: Sequence[int], attn_mask_prob: float = 0.0) -> Tensor:
        """x [N, D] (image-major) -> [N, D]; ``attn_mask_prob`` as :class:`MultiHeadAttention`,
        drawn afresh in every block."""
        if x.shape[0] == 0:
            return x
        counts = [int(n) for n in num_objs if n > 0]  # an image without objects has no row to attend from
        padded = pad_sequence(list(x.split(counts)), batch_first=True)
        steps = torch.arange(padded.shape[1], device=x.device)
        lengths = torch.tensor(counts, device=x.device)
        non_pad = (steps[None, :] < lengths[:, None]).unsqueeze(-1)  # [B, L, 1]
        key_pad = ~non_pad.transpose(1, 2)  # [B, 1, L]
        out = padded
        for layer in self.layer_stack:
            out = layer(out, key_pad, non_pad.to(out.dtype), attn_mask_prob)
        return out[non_pad.squeeze(-1)]


class TransformerContextOutput(NamedTuple):
    """What :class:`TransformerContext` returns; every per-object tensor is image-major."""

    obj_dists: Tensor  # [N, C] object logits
    obj_preds: Tensor  # Int64[N] object labels the relation stage uses
    edge_ctx: Tensor  # [N, hidden]
    edge_input: Tensor  # [N, obj_dim + hidden + embed] what lin_edge and the edge encoder consumed
    num_objs: List[int]


class TransformerContext(nn.Module):
    """Object and edge context of SGB's TransformerPredictor.

    lin_obj([roi feature, class embedding, box embedding]) -> object encoder; object logits
    ``out_obj`` (SGCls / SGDet; argmax over foreground, SGB's per-class NMS in SGDet test);
    lin_edge([roi feature, object context, obj_embed2(label)]) -> edge encoder.

    Args:
        num_obj_classes: C; obj_dim: RoI feature width; mode: "predcls" | "sgcls" | "sgdet".
        embed_dim / hidden_dim / pos_dim: EMBED_DIM, CONTEXT_HIDDEN_DIM, the box embedding (128).
        dropout_rate, obj_layers, edge_layers, num_head, inner_dim, k_dim, v_dim:
            MODEL.ROI_RELATION_HEAD.TRANSFORMER.* (SGB: 0.1, 4, 2, 8, 2048, 64, 64).
        nms_thresh: LATER_NMS_PREDICTION_THRES.
    """

    def __init__(self, *, num_obj_classes: int, obj_dim: int, mode: str = "predcls", embed_dim: int = 200,
                 hidden_dim: int = 512, pos_dim: int = 128, dropout_rate: float = 0.1, obj_layers: int = 4,
                 edge_layers: int = 2, num_head: int = 8, inner_dim: int = 2048, k_dim: int = 64,
                 v_dim: int = 64, nms_thresh: float = 0.3):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.num_obj_classes, self.mode, self.nms_thresh = num_obj_classes, mode, nms_thresh
        self.obj_dim, self.embed_dim, self.hidden_dim = obj_dim, embed_dim, hidden_dim
        self.obj_embed1 = nn.Embedding(num_obj_classes, embed_dim)
        self.obj_embed2 = nn.Embedding(num_obj_classes, embed_dim)
        self.bbox_embed = nn.Sequential(nn.Linear(9, 32), nn.ReLU(inplace=True), nn.Dropout(0.1),
                                        nn.Linear(32, pos_dim), nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.lin_obj = nn.Linear(obj_dim + embed_dim + pos_dim, hidden_dim)
        self.lin_edge = nn.Linear(embed_dim + hidden_dim + obj_dim, hidden_dim)
        # SGB builds out_obj in PredCls too, where it is unused; here only where it predicts.
        self.out_obj = nn.Linear(hidden_dim, num_obj_classes) if mode != "predcls" else None
        enc = dict(n_head=num_head, d_k=k_dim, d_v=v_dim, d_model=hidden_dim, d_inner=inner_dim,
                   dropout=dropout_rate)
        self.context_obj = TransformerEncoder(obj_layers, **enc)
        self.context_edge = TransformerEncoder(edge_layers, **enc)

    def edge_context(self, edge_input: Tensor, num_objs: Sequence[int], attn_mask_prob: float = 0.0) -> Tensor:
        """lin_edge and the edge encoder: [N, obj_dim + hidden + embed] -> [N, hidden].

        Called once by the forward pass and again by the alignment mirror, with attention masking.
        """
        return self.context_edge(self.lin_edge(edge_input), num_objs, attn_mask_prob)

    def forward(self, roi_features: Tensor, boxes: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]],
                obj_labels: Optional[Tensor] = None, obj_logits: Optional[Tensor] = None,
                boxes_for_nms: Optional[List[Tensor]] = None) -> TransformerContextOutput:
        """As :meth:`LSTMContext.forward` (the same arguments)."""
        num_objs = [int(b.shape[0]) for b in boxes]
        if self.mode == "predcls":
            if obj_labels is None:
                raise ValueError("TransformerContext (predcls) needs obj_labels")
            obj_embed = self.obj_embed1(obj_labels.long())
        else:
            if obj_logits is None:
                raise ValueError(f"TransformerContext ({self.mode}) needs the detector's class logits")
            obj_embed = torch.softmax(obj_logits.detach().float(), 1) @ self.obj_embed1.weight
        pos_embed = self.bbox_embed(encode_box_info(boxes, image_sizes).to(roi_features.device))
        obj_feats = self.context_obj(self.lin_obj(torch.cat([roi_features, obj_embed, pos_embed], -1)), num_objs)
        if self.mode == "predcls":
            obj_preds = obj_labels.long()
            obj_dists = to_onehot(obj_preds, self.num_obj_classes)
        else:
            obj_dists = self.out_obj(obj_feats)
            if self.mode == "sgdet" and not self.training:
                nms_boxes = boxes_for_nms if boxes_for_nms is not None else list(boxes)
                obj_preds = torch.cat([obj_prediction_nms(b, d, self.nms_thresh)
                                       for b, d in zip(nms_boxes, obj_dists.split(num_objs))])
            else:
                obj_preds = obj_dists[:, 1:].argmax(1) + 1
        edge_input = torch.cat([roi_features, obj_feats, self.obj_embed2(obj_preds)], -1)
        return TransformerContextOutput(obj_dists, obj_preds, self.edge_context(edge_input, num_objs),
                                        edge_input, num_objs)
