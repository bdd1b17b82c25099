"""Provider verification, a rule of the launch procedure: a gateway or reseller
(`openai_compatible`) or a vendor reached through LiteLLM carries no traffic until
its owner, quota, export rights, privacy terms and failed-call billing are on
record (`verified:`). A "free or unlimited" wrapper is unverified until then.
It is checked when a config is loaded, so `tollgate check` and `serve` refuse it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

NEEDS_RECORD = ("openai_compatible", "litellm")
RECORD_FIELDS = ("owner", "quota", "export_rights", "privacy", "failed_call_billing")


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    kind: str
    verified: bool  # a complete `verified:` record is present


class ProviderVerification:
    name = "provider_verification"

    def unverified(self, providers: Mapping[str, ProviderFacts]) -> Iterator[tuple[str, str]]:
        """(provider, what to do) for each provider that may not carry traffic yet."""
        for name, facts in providers.items():
            if facts.kind in NEEDS_RECORD and not facts.verified:
                yield (
                    name,
                    f"a provider of kind '{facts.kind}' needs a `verified:` record before it carries traffic "
                    f"({', '.join(RECORD_FIELDS)}); find them out and add them, or remove the provider",
                )
