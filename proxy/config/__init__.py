"""`config.yaml`: its typed schema and the loader that validates it once, at the edge."""

from .issues import ConfigError, ConfigIssue
from .loading import LoadedConfig, config_version, load_config, parse_config, read_config_text
from .schema import Config, ProviderSettings, Route, Target

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "LoadedConfig",
    "ProviderSettings",
    "Route",
    "Target",
    "config_version",
    "load_config",
    "parse_config",
    "read_config_text",
]
