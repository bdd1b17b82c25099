"""Loading a config for use: the schema and references (proxy.config), then the
rules that need the rest of the proxy, such as every route having a price."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .config import ConfigError, LoadedConfig, load_config
from .pricing.coverage import price_coverage_issues


def load_checked(path: str | Path, env: Mapping[str, str]) -> LoadedConfig:
    loaded = load_config(path, env)
    issues = list(price_coverage_issues(loaded.config))
    if issues:
        raise ConfigError(loaded.source, issues)
    return loaded
