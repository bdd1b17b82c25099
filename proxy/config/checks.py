"""Loading a config for use: the schema and references (loading.py), then the
rules that need the rest of the proxy, such as every route having a price, and
provider verification: a gateway or reseller (`openai_compatible`) or a vendor
reached through LiteLLM carries no traffic until its owner, quota, export rights,
privacy terms and failed-call billing are on record (`verified:`); a "free or
unlimited" wrapper is unverified until then.
Start-up, every reload and `tollgate check` / `diff` all go through here;
`strict` (`tollgate check --strict`) also refuses targets priced from the catalog."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from providers.registry import VerifiedRecord

from ..pricing.coverage import catalog_priced_issues, price_coverage_issues
from .issues import ConfigError, ConfigIssue
from .loading import LoadedConfig, parse_config, read_config_text
from .schema import Config

RECORD_FIELDS = tuple(name for name, field in VerifiedRecord.model_fields.items() if field.is_required())


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
    return [
        ConfigIssue(
            f"providers.{name}.verified",
            f"a provider of kind '{provider.kind}' needs a `verified:` record before it carries traffic "
            f"({', '.join(RECORD_FIELDS)}); find them out and add them, or remove the provider",
        )
        for name, provider in config.providers.items()
        if provider.needs_record and provider.verified is None
    ]
