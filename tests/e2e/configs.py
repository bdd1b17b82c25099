"""The configs the end-to-end tests serve, built in one place: a `ConfigFile` holds the
sections a test needs as plain dicts and lists, and `yaml()` writes the file
`tollgate serve` reads. A test states what is its own (a route's retries, a key's
budget) and takes the rest from here, so a change to the config's shape is made once.

Amounts are `Decimal` and dates `datetime.date`: written as YAML reads them back (the
proxy loads numbers as exact decimals), never through a float.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from .harness import ACME_UPSTREAM_KEY, OPENAI_UPSTREAM_KEY

Section = dict[str, Any]

# A `verified:` record for a provider that needs one (a reseller, a gateway) and whose
# terms the test does not read.
VERIFIED: Section = {
    "owner": "a",
    "quota": "q",
    "export_rights": "e",
    "privacy": "p",
    "failed_call_billing": "not billed",
}
# Each proxy `start_proxy` starts is given a ledger of its own in this variable.
LEDGER_FROM_ENV = "${TOLLGATE_LEDGER_URL}"
JSON_LOGS: Section = {"level": "info", "format": "json"}


@dataclass
class ConfigFile:
    """A config as the sections of `config.yaml`; an empty section is left out of the file."""

    providers: dict[str, Section]
    routes: dict[str, Section]
    server: Section = field(default_factory=dict)
    ledger: Section = field(default_factory=lambda: {"url": LEDGER_FROM_ENV})
    price_tables: dict[str, Section] = field(default_factory=dict)
    keys: list[Section] = field(default_factory=list)
    teams: dict[str, Section] = field(default_factory=dict)
    policies: Section = field(default_factory=dict)
    state: Section = field(default_factory=dict)
    files: Section = field(default_factory=dict)

    def yaml(self) -> str:
        sections = {
            "server": self.server,
            "ledger": self.ledger,
            "price_tables": self.price_tables,
            "providers": self.providers,
            "routes": self.routes,
            "keys": self.keys,
            "teams": self.teams,
            "policies": self.policies,
            "state": self.state,
            "files": self.files,
        }
        written = {name: section for name, section in sections.items() if section}
        return yaml.dump(written, Dumper=_Dumper, sort_keys=False, default_flow_style=False)

    def changed(self, **sections: Any) -> ConfigFile:
        """A copy with `sections` (keys, teams, state, …) in place of its own."""
        return dataclasses.replace(copy.deepcopy(self), **sections)

    def with_server(self, **settings: Any) -> ConfigFile:
        """A copy whose `server` section has `settings` as well (an admin key, a drain timeout, …)."""
        return self.changed(server={**self.server, **settings})


def provider(kind: str, base_url: str, api_key: str, billing_owner: str, **settings: Any) -> Section:
    return {"kind": kind, "base_url": base_url, "api_key": api_key, "billing_owner": billing_owner, **settings}


def openai_on(
    simulator_url: str,
    path: str = "openai",
    *,
    api_key: str = OPENAI_UPSTREAM_KEY,
    billing_owner: str = "openai/org-test",
    **settings: Any,
) -> Section:
    """A provider of kind `openai` at the simulator's `/<path>/v1`, priced on OpenAI's own table."""
    settings = {"price_table": "openai-official", **settings}
    return provider("openai", f"{simulator_url}/{path}/v1", api_key, billing_owner, **settings)


def acme_on(
    simulator_url: str, *, api_key: str = ACME_UPSTREAM_KEY, billing_owner: str = "acme/acct-7", **settings: Any
) -> Section:
    """Acme, a verified reseller of kind `openai_compatible`, at the simulator's `/acme/v1`."""
    settings = {"verified": dict(VERIFIED), **settings}
    return provider("openai_compatible", f"{simulator_url}/acme/v1", api_key, billing_owner, **settings)


def target(provider: str, model: str, **settings: Any) -> Section:
    return {"provider": provider, "model": model, **settings}


def route(*targets: Section, fallbacks: tuple[Section, ...] | list[Section] = (), **settings: Any) -> Section:
    """A route to `targets` (then `fallbacks`, if any); `settings` are its other keys (retries, owner, …)."""
    return {"targets": list(targets), **({"fallbacks": list(fallbacks)} if fallbacks else {}), **settings}


def key(id: str, key: str, team: str | None = None, **settings: Any) -> Section:
    """A client key (`settings`: its routes, budgets, rate limits, stage)."""
    return {"id": id, "key": key, **({"team": team} if team else {}), **settings}


def acme_price_table(**models: Section) -> Section:
    """Acme's own price table, as a provider publishes one."""
    return {
        "source": "provider",
        "provider": "acme",
        "effective": dt.date(2026, 11, 1),
        "url": "https://gw.acme.example/pricing",
        "models": models,
    }


def routed(simulator_url: str) -> ConfigFile:
    """Two providers on the simulator, told apart by path (openai on OpenAI's table, acme a
    verified reseller on the catalog), and a route per surface: openai first, acme after."""

    def on_both(model: str, **settings: Any) -> Section:
        return route(target("openai", model), fallbacks=[target("acme", model)], **settings)

    return ConfigFile(
        server={"max_body_mb": 2, "log": dict(JSON_LOGS)},
        providers={
            "openai": openai_on(simulator_url),
            "acme": acme_on(
                simulator_url,
                verified={
                    "owner": "Acme",
                    "quota": "100/min",
                    "export_rights": "customer",
                    "privacy": "no retention",
                    "failed_call_billing": "not billed",
                },
            ),
        },
        routes={
            "gpt-image-2": on_both("gpt-image-2", owner="platform-team", timeout_s=30, retries=1),
            "gpt-5.4": on_both("gpt-5.4", owner="assistants-team", retries=1),
            "gpt-5.4-mini": on_both("gpt-5.4-mini", retries=1),
            "text-embedding-3-small": route(target("openai", "text-embedding-3-small")),
        },
    )


class _Dumper(yaml.SafeDumper):
    """Writes a Decimal as the plain number it is, which the proxy's loader reads back exactly,
    and a section used twice in full each time (no YAML anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = str(value)
    return dumper.represent_scalar(dumper.resolve(yaml.ScalarNode, text, (True, False)), text)


_Dumper.add_representer(Decimal, _decimal)
