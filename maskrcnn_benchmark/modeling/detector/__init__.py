from .detectors import build_detection_model
from .generalized_rcnn import GeneralizedRCNN
from .scene_graph import SceneGraphModel, build_scene_graph_model

__all__ = ["build_detection_model", "build_scene_graph_model", "GeneralizedRCNN", "SceneGraphModel"]
