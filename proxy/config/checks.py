"""Loading a config for use: the schema and references (loading.py), then the
rules that need the rest of the proxy, such as every route having a price.
Start-up, every reload and `tollgate check` / `diff` all go through here;
`strict` (`tollgate check --strict`) also refuses targets priced from the catalog."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from policies.provider_verification import ProviderFacts, ProviderVerification

from ..pricing.coverage import catalog_priced_issues, price_coverage_issues
from .loading import ConfigError, ConfigIssue, LoadedConfig, parse_config, read_config_text
from .schema import Config


def load_checked(path: str | Path, env: Mapping[str, str], *, strict: bool = False) -> LoadedConfig:
    return parse_checked(read_config_text(path), env, source=str(path), strict=strict)


def parse_checked(text: str, env: Mapping[str, str], *, source: str, strict: bool = False) -> LoadedConfig:
    loaded = parse_config(text, env, source=source)
    issues = [*price_coverage_issues(loaded.config), *verification_issues(loaded.config)]
    if strict:
        issues += catalog_priced_issues(loaded.config)
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
