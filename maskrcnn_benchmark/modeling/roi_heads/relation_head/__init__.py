"""Stage 2: the Neural Motifs relation head (see docs/design.md, "Relation stage")."""
from .feature_extractors import RelationBoxFeatureExtractor, RelationUnionFeatureExtractor
from .inference import RelationPostProcessor
from .model_motifs import DecoderRNN, FrequencyBias, LSTMContext
from .relation_head import ROIRelationHead, build_roi_relation_head
from .roi_relation_predictors import MotifPairContext, MotifPredictor, relation_mode
from .sampling import RelationSampler

__all__ = [
    "DecoderRNN", "FrequencyBias", "LSTMContext", "MotifPairContext", "MotifPredictor",
    "ROIRelationHead", "RelationBoxFeatureExtractor", "RelationPostProcessor", "RelationSampler",
    "RelationUnionFeatureExtractor", "build_roi_relation_head", "relation_mode",
]
