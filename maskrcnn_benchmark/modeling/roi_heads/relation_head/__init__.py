"""Stage 2: the relation head and its predictors (see docs/design.md, "Relation stage")."""
from .feature_extractors import RelationBoxFeatureExtractor, RelationUnionFeatureExtractor
from .inference import RelationPostProcessor
from .model_motifs import DecoderRNN, FrequencyBias, LSTMContext
from .pair_head import PairHeadPredictor
from .relation_head import ROIRelationHead, build_roi_relation_head
from .roi_relation_predictors import (IMPPredictor, MotifPairContext, MotifPredictor, TransformerPredictor,
                                      VCTreePredictor, relation_mode)
from .sampling import RelationSampler

__all__ = [
    "DecoderRNN", "FrequencyBias", "IMPPredictor", "LSTMContext", "MotifPairContext", "MotifPredictor",
    "PairHeadPredictor", "ROIRelationHead", "RelationBoxFeatureExtractor", "RelationPostProcessor",
    "RelationSampler", "RelationUnionFeatureExtractor", "TransformerPredictor", "VCTreePredictor",
    "build_roi_relation_head", "relation_mode",
]
