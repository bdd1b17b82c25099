"""`config.yaml`: its typed schema and the loader that validates it once, at the edge."""

from .loading import ConfigError, ConfigIssue, LoadedConfig, load_config, parse_config
from .schema import Config, ProviderSettings, Route, Target

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "LoadedConfig",
    "ProviderSettings",
    "Route",
    "Target",
    "load_config",
    "parse_config",
]
