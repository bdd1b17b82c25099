"""Loading a config for use: the schema and references (proxy.config), then the
rules that need the rest of the proxy, such as every route having a price."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from policies.provider_verification import ProviderFacts, ProviderVerification

from .config import Config, ConfigError, ConfigIssue, LoadedConfig, load_config
from .pricing.coverage import price_coverage_issues


def load_checked(path: str | Path, env: Mapping[str, str]) -> LoadedConfig:
    loaded = load_config(path, env)
    issues = [*price_coverage_issues(loaded.config), *verification_issues(loaded.config)]
    if issues:
        raise ConfigError(loaded.source, issues)
    return loaded


def verification_issues(config: Config) -> list[ConfigIssue]:
    if not config.policies.provider_verification.enabled:
        return []
    facts = {name: ProviderFacts(p.kind, p.verified is not None) for name, p in config.providers.items()}
    return [
        ConfigIssue(f"providers.{name}.verified", problem) for name, problem in ProviderVerification().unverified(facts)
    ]
