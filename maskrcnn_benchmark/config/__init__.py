"""yacs configuration: SGB's key names, read once at the edge (``build_*(cfg)``)."""
from .defaults import _C
from .loader import ConfigError, get_cfg, load_config, save_config

__all__ = ["ConfigError", "get_cfg", "load_config", "save_config", "_C"]
