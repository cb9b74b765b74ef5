from .box_head import BoxRoIHeads, build_roi_box_head

__all__ = ["BoxRoIHeads", "build_roi_box_head"]
