"""yacs configuration: SGB's key names, read once at the edge (``build_*(cfg)``)."""
from .defaults import _C
from .loader import ConfigError, config_changes, get_cfg, load_config, save_config

__all__ = ["ConfigError", "config_changes", "get_cfg", "load_config", "save_config", "_C"]
