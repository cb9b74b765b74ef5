"""Neural Motifs' context (Zellers et al. 2018, as SGB builds it): frequency bias, object label
decoder and the object / edge context bi-LSTMs, batched over images."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .utils_motifs import ObjectOrder, encode_box_info, obj_prediction_nms, recurrent_autocast, to_onehot

__all__ = ["ContextOutput", "DecoderRNN", "FrequencyBias", "LSTMContext", "MODES"]

MODES = ("predcls", "sgcls", "sgdet")


class FrequencyBias(nn.Module):
    """log p(predicate | subject class, object class) as a trainable Embedding(C*C, P).

    Args:
        num_obj_classes: C (background included).
        num_rel_classes: P (background included).
        pred_dist: FloatTensor[C, C, P] initial values (the statistics' ``pred_dist``); zeros
            when None (the weights then come from a checkpoint).
    """

    def __init__(self, num_obj_classes: int, num_rel_classes: int, pred_dist: Optional[Tensor] = None):
        super().__init__()
        self.num_obj_classes = num_obj_classes
        self.obj_baseline = nn.Embedding(num_obj_classes * num_obj_classes, num_rel_classes)
        with torch.no_grad():
            if pred_dist is None:
                self.obj_baseline.weight.zero_()
            else:
                expected = (num_obj_classes, num_obj_classes, num_rel_classes)
                if tuple(pred_dist.shape) != expected:
                    raise ValueError(f"statistics pred_dist has shape {tuple(pred_dist.shape)}, the model "
                                     f"expects {expected} (ROI_BOX_HEAD.NUM_CLASSES, "
                                     "ROI_RELATION_HEAD.NUM_CLASSES): do the config and dataset match?")
                self.obj_baseline.weight.copy_(pred_dist.reshape(-1, num_rel_classes).float())

    def index_with_labels(self, pair_labels: Tensor) -> Tensor:
        """pair_labels Int64[R, 2] (subject class, object class) -> logits [R, P]."""
        return self.obj_baseline(pair_labels[:, 0].long() * self.num_obj_classes + pair_labels[:, 1].long())

    def forward(self, pair_labels: Tensor) -> Tensor:
        return self.index_with_labels(pair_labels)


class DecoderRNN(nn.Module):
    """SGB's object label decoder: a highway LSTM that labels one object per step.

    Each step reads its object's features and the embedding of the previous object's label
    (teacher-forced in training; its own greedy non-background prediction otherwise). Runs all
    images of the batch together (column ``b`` of the padded input is image ``b``'s sequence).
    """

    def __init__(self, *, num_obj_classes: int, embed_dim: int, inputs_dim: int, hidden_dim: int,
                 rnn_drop: float = 0.2, obj_embed_vecs: Optional[Tensor] = None):
        super().__init__()
        self.num_obj_classes, self.hidden_dim, self.rnn_drop = num_obj_classes, hidden_dim, rnn_drop
        self.obj_embed = nn.Embedding(num_obj_classes + 1, embed_dim)  # index 0: the start token
        if obj_embed_vecs is not None:  # [C + 1, embed_dim], SGB: GloVe of ["start"] + classes
            with torch.no_grad():
                self.obj_embed.weight.copy_(obj_embed_vecs)
        self.input_linearity = nn.Linear(inputs_dim + embed_dim, 6 * hidden_dim)
        self.state_linearity = nn.Linear(hidden_dim, 5 * hidden_dim)
        self.out_obj = nn.Linear(hidden_dim, num_obj_classes)
        nn.init.zeros_(self.input_linearity.bias)
        nn.init.zeros_(self.state_linearity.bias)

    def _step(self, x: Tensor, state: Tensor, memory: Tensor) -> Tuple[Tensor, Tensor]:
        h = self.hidden_dim
        pi, ps = self.input_linearity(x), self.state_linearity(state)
        gate_in = torch.sigmoid(pi[:, :h] + ps[:, :h])
        gate_forget = torch.sigmoid(pi[:, h:2 * h] + ps[:, h:2 * h])
        candidate = torch.tanh(pi[:, 2 * h:3 * h] + ps[:, 2 * h:3 * h])
        gate_out = torch.sigmoid(pi[:, 3 * h:4 * h] + ps[:, 3 * h:4 * h])
        memory = gate_in * candidate + gate_forget * memory
        out = gate_out * torch.tanh(memory)
        highway = torch.sigmoid(pi[:, 4 * h:5 * h] + ps[:, 4 * h:5 * h])
        return highway * out + (1 - highway) * pi[:, 5 * h:6 * h], memory

    def forward(self, inputs: Tensor, lengths: Sequence[int],
                labels: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """inputs [T, B, D] (columns longest first), labels Int64[T, B] (training) ->
        (logits [T, B, C], committed labels Int64[T, B]); padded positions are left zero."""
        steps, batch = inputs.shape[:2]
        logits = inputs.new_zeros(steps, batch, self.num_obj_classes)
        commits = torch.zeros(steps, batch, dtype=torch.int64, device=inputs.device)
        state = inputs.new_zeros(batch, self.hidden_dim)
        memory = inputs.new_zeros(batch, self.hidden_dim)
        prev = self.obj_embed.weight[0].expand(batch, -1)
        mask = None
        if self.training and self.rnn_drop > 0:  # one recurrent dropout mask per sequence
            keep = torch.rand(batch, self.hidden_dim, device=inputs.device) > self.rnn_drop
            mask = keep.to(inputs.dtype) / (1.0 - self.rnn_drop)
        for t in range(steps):
            k = sum(1 for n in lengths if n > t)  # active columns form a prefix
            state, memory, prev = state[:k], memory[:k], prev[:k]
            state, memory = self._step(torch.cat([inputs[t, :k], prev], 1), state, memory)
            if mask is not None:
                state = state * mask[:k]
            step_logits = self.out_obj(state)
            best = step_logits[:, 1:].argmax(1) + 1
            if self.training:
                if labels is None:
                    raise ValueError("the object decoder needs the object labels in training")
                commit = torch.where(labels[t, :k] > 0, labels[t, :k], best)  # bg: own guess
            else:
                commit = best
            logits[t, :k], commits[t, :k] = step_logits, commit
            prev = self.obj_embed(commit + 1)
        return logits, commits


class ContextOutput(NamedTuple):
    """What :class:`LSTMContext` returns; every per-object tensor is in input order."""

    obj_dists: Tensor  # [N, C] refined object logits
    obj_preds: Tensor  # Int64[N] object labels the relation stage uses
    edge_ctx: Tensor  # [N, hidden] edge context
    edge_input: Tensor  # [N, embed + obj_dim + hidden] what the edge bi-LSTM consumed
    order: ObjectOrder


class LSTMContext(nn.Module):
    """Object and edge context of Neural Motifs.

    obj_ctx bi-LSTM over [roi feature, class embedding, position embedding] of the objects sorted
    left to right -> lin_obj_h; object decoder (SGCls / SGDet); edge_ctx bi-LSTM over
    [obj_embed2(label), roi feature, object context] -> lin_edge_h.

    Args:
        num_obj_classes: C (background included).
        obj_dim: width of the RoI features.
        mode: "predcls" (labels given, no decoder), "sgcls" or "sgdet".
        embed_dim / hidden_dim / pos_dim: SGB's EMBED_DIM (200), CONTEXT_HIDDEN_DIM (512), 128.
        obj_embed_vecs: optional [C, embed_dim] initial obj_embed1 / obj_embed2 (GloVe, see
            ``word_vectors.class_embedding_vectors``); random init when None.
        decoder_embed_vecs: likewise [C + 1, embed_dim] for the decoder's embedding.
    """

    def __init__(self, *, num_obj_classes: int, obj_dim: int, mode: str = "predcls",
                 embed_dim: int = 200, hidden_dim: int = 512, pos_dim: int = 128,
                 dropout_rate: float = 0.2, obj_layers: int = 1, edge_layers: int = 1,
                 nms_thresh: float = 0.3, obj_embed_vecs: Optional[Tensor] = None,
                 decoder_embed_vecs: Optional[Tensor] = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if obj_layers < 1 or edge_layers < 1:
            raise ValueError("CONTEXT_OBJ_LAYER and CONTEXT_REL_LAYER must be >= 1")
        self.num_obj_classes, self.mode, self.nms_thresh = num_obj_classes, mode, nms_thresh
        self.obj_dim, self.embed_dim, self.hidden_dim = obj_dim, embed_dim, hidden_dim
        self.obj_embed1 = nn.Embedding(num_obj_classes, embed_dim)
        self.obj_embed2 = nn.Embedding(num_obj_classes, embed_dim)
        if obj_embed_vecs is not None:
            with torch.no_grad():
                self.obj_embed1.weight.copy_(obj_embed_vecs)
                self.obj_embed2.weight.copy_(obj_embed_vecs)
        self.pos_embed = nn.Sequential(nn.Linear(9, 32), nn.BatchNorm1d(32, momentum=0.001),
                                       nn.Linear(32, pos_dim), nn.ReLU(inplace=True))
        obj_in = obj_dim + embed_dim + pos_dim
        self.obj_ctx_rnn = nn.LSTM(obj_in, hidden_dim, num_layers=obj_layers, bidirectional=True,
                                   dropout=dropout_rate if obj_layers > 1 else 0.0)
        self.decoder_rnn = None
        if mode != "predcls":
            self.decoder_rnn = DecoderRNN(num_obj_classes=num_obj_classes, embed_dim=embed_dim,
                                          inputs_dim=obj_in + hidden_dim, hidden_dim=hidden_dim,
                                          rnn_drop=dropout_rate, obj_embed_vecs=decoder_embed_vecs)
        self.edge_ctx_rnn = nn.LSTM(embed_dim + obj_dim + hidden_dim, hidden_dim,
                                    num_layers=edge_layers, bidirectional=True,
                                    dropout=dropout_rate if edge_layers > 1 else 0.0)
        self.lin_obj_h = nn.Linear(2 * hidden_dim, hidden_dim)
        self.lin_edge_h = nn.Linear(2 * hidden_dim, hidden_dim)

    @property
    def edge_input_dim(self) -> int:
        return self.embed_dim + self.obj_dim + self.hidden_dim

    @staticmethod
    def _run_bilstm(lstm: nn.LSTM, x: Tensor, order: ObjectOrder) -> Tensor:
        """[N, D] in input order -> [N, 2*hidden], each image one left-to-right sequence."""
        if x.shape[0] == 0:
            return x.new_zeros(0, 2 * lstm.hidden_size)
        with recurrent_autocast(x.device):
            packed = pack_padded_sequence(order.to_padded(x.float()), order.lengths, enforce_sorted=True)
            out, _ = pad_packed_sequence(lstm(packed)[0], total_length=order.num_steps)
        return order.from_padded(out)

    def _position(self, boxes: Sequence[Tensor], image_sizes: Sequence[Tuple[int, int]]) -> Tensor:
        info = encode_box_info(boxes, image_sizes).to(self.lin_obj_h.weight.device)
        if self.training and info.shape[0] < 2:  # BatchNorm cannot take batch statistics of one
            bn = self.pos_embed[1]
            x = F.batch_norm(self.pos_embed[0](info), bn.running_mean, bn.running_var,
                             bn.weight, bn.bias, training=False, eps=bn.eps)
            return self.pos_embed[3](self.pos_embed[2](x))
        return self.pos_embed(info)

    def edge_context(self, edge_input: Tensor, order: ObjectOrder) -> Tensor:
        """The edge bi-LSTM and lin_edge_h: [N, edge_input_dim] -> [N, hidden] (input order).

        Called once by the forward pass and again, with masked inputs, by the alignment mirror.
        """
        return self.lin_edge_h(self._run_bilstm(self.edge_ctx_rnn, edge_input, order))

    def forward(self, roi_features: Tensor, boxes: Sequence[Tensor],
                image_sizes: Sequence[Tuple[int, int]], obj_labels: Optional[Tensor] = None,
                obj_logits: Optional[Tensor] = None,
                boxes_for_nms: Optional[List[Tensor]] = None) -> ContextOutput:
        """Context of the objects of a batch (image-major input order).

        Args:
            roi_features: [N, obj_dim].
            boxes: per image [n_i, 4] xyxy in resized-image pixels; image_sizes (h, w) each.
            obj_labels: Int64[N]: ground truth (PredCls, always; SGCls training) or the labels
                assigned by matching (SGDet training, 0 = background); unused otherwise.
            obj_logits: [N, C] the detector's class logits (SGCls / SGDet).
            boxes_for_nms: SGDet test, per image [n_i, 4] or [n_i, C, 4]; default ``boxes``.
        """
        order = ObjectOrder.left_to_right(boxes)
        predcls = self.mode == "predcls"
        if obj_labels is None and (predcls or self.training):
            raise ValueError(f"LSTMContext ({self.mode}, training={self.training}) needs obj_labels")
        if predcls:
            obj_embed = self.obj_embed1(obj_labels.long())
        else:
            if obj_logits is None:
                raise ValueError(f"LSTMContext ({self.mode}) needs the detector's class logits")
            obj_embed = torch.softmax(obj_logits.detach().float(), 1) @ self.obj_embed1.weight
        obj_rep = torch.cat([roi_features, obj_embed, self._position(boxes, image_sizes)], 1)
        obj_ctx = self.lin_obj_h(self._run_bilstm(self.obj_ctx_rnn, obj_rep, order))

        if predcls:
            obj_preds = obj_labels.long()
            obj_dists = to_onehot(obj_preds, self.num_obj_classes)
        else:
            padded_in = order.to_padded(torch.cat([obj_rep, obj_ctx], 1))
            padded_labels = order.to_padded(obj_labels.long()) if self.training else None
            with recurrent_autocast(padded_in.device):
                logits, commits = self.decoder_rnn(padded_in.float(), order.lengths, padded_labels)
            obj_dists, obj_preds = order.from_padded(logits), order.from_padded(commits)
            if self.mode == "sgdet" and not self.training:
                nms_boxes = boxes_for_nms if boxes_for_nms is not None else list(boxes)
                preds = [obj_prediction_nms(b, d, self.nms_thresh)
                         for b, d in zip(nms_boxes, obj_dists.split(order.num_objs))]
                obj_preds = torch.cat(preds) if preds else obj_preds

        edge_input = torch.cat([self.obj_embed2(obj_preds), roi_features, obj_ctx], 1)
        edge_ctx = self.edge_context(edge_input, order)
        return ContextOutput(obj_dists, obj_preds, edge_ctx, edge_input, order)
