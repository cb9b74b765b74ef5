"""Evaluation of detections and scene graphs (``vg``: SGB-exact VG150 protocol)."""
