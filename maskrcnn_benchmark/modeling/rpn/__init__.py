from .rpn import build_anchor_generator, build_rpn

__all__ = ["build_anchor_generator", "build_rpn"]
