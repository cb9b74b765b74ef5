"""SGB-exact scene-graph evaluation for VG150-format datasets (pure numpy + pycocotools)."""
from .detection_eval import evaluate_detections
from .matching import NO_HIT, ImageMatches, box_iou_sgb, match_image
from .predictions_io import PREDICTIONS_FORMAT, PREDICTIONS_VERSION, load_predictions, \
    save_predictions
from .report import format_table, save_results
from .sgg_eval import KS, evaluate_relations
from .splits import VG150_GROUPS_FILE, find_predicate_groups, load_predicate_groups, \
    relation_triplets, zeroshot_triplets
from .vg_eval import do_vg_evaluation, eval_mode, train_triplets, zeroshot_from_train

__all__ = [
    "KS", "NO_HIT", "PREDICTIONS_FORMAT", "PREDICTIONS_VERSION", "VG150_GROUPS_FILE",
    "ImageMatches", "box_iou_sgb", "do_vg_evaluation", "eval_mode", "evaluate_detections",
    "evaluate_relations", "find_predicate_groups", "format_table", "load_predicate_groups",
    "load_predictions", "match_image", "relation_triplets", "save_predictions", "save_results",
    "train_triplets", "zeroshot_from_train", "zeroshot_triplets",
]
