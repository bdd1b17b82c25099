"""What a config change does: `tollgate diff OLD NEW` — routes, providers, billing
owners, price tables and the other settings, secrets never shown — and the
settings a reload cannot change while serving."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from providers.registry import ProviderSettings

from .redaction import MASK, redacted_config
from .schema import Config, Target
from .tables import price_table

# Read once at start-up (the listening socket, the processes, the ledger, the state
# store, the file store, logging set-up): a reload takes the rest and says these wait.
RESTART_ONLY = (
    "server.host",
    "server.port",
    "server.workers",
    "server.drain_timeout_s",
    "server.client_header_timeout_s",
    "server.client_body_timeout_s",
    "server.max_connections",
    "server.watch_config",
    "server.log.level",
    "server.log.format",
    "ledger",
    "state",
    "files",
)


def restart_only_changes(old: Config, new: Config) -> list[str]:
    return [path for path in RESTART_ONLY if _at(old, path) != _at(new, path)]


def _at(config: Config, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


@dataclass(frozen=True, slots=True)
class Change:
    section: str  # routes, providers, billing owners, price tables, other settings
    name: str
    kind: Literal["added", "removed", "changed"]
    details: tuple[str, ...] = ()


def diff_configs(old: Config, new: Config) -> list[Change]:
    return [
        *_routes(old, new),
        *_providers(old, new),
        *_billing_owners(old, new),
        *_price_tables(old, new),
        *_other_settings(old, new),
    ]


def render(changes: list[Change]) -> str:
    lines: list[str] = []
    section = None
    for change in changes:
        if change.section != section:
            section = change.section
            lines += ["", section] if lines else [section]
        mark = {"added": "+", "removed": "-", "changed": "~"}[change.kind]
        if change.kind == "changed" and len(change.details) > 1:
            lines.append(f"  {mark} {change.name}")
            lines += [f"      {detail}" for detail in change.details]
        else:
            lines.append(f"  {mark} {change.name}" + (f": {change.details[0]}" if change.details else ""))
    return "\n".join(lines)


# --- the sections --------------------------------------------------------------------------


def _routes(old: Config, new: Config) -> Iterator[Change]:
    shown_old, shown_new = redacted_config(old)["routes"], redacted_config(new)["routes"]
    for name, kind in _names(old.routes, new.routes):
        if kind == "added":
            route = new.routes[name]
            yield Change("routes", name, kind, (_plan(route.targets, route.fallbacks),))
        elif kind == "removed":
            yield Change("routes", name, kind)
        else:
            before, after = old.routes[name], new.routes[name]
            details = []
            for field, weights in (("targets", True), ("fallbacks", False)):
                was, now = getattr(before, field), getattr(after, field)
                if was != now:
                    details.append(f"{field}: {_targets(was, weights=weights)} → {_targets(now, weights=weights)}")
            raw_before = _without(before.model_dump(), "targets", "fallbacks")
            raw_after = _without(after.model_dump(), "targets", "fallbacks")
            details += _field_changes(raw_before, raw_after, shown_old[name], shown_new[name])
            if details:
                yield Change("routes", name, "changed", tuple(details))


def _providers(old: Config, new: Config) -> Iterator[Change]:
    shown_old, shown_new = redacted_config(old)["providers"], redacted_config(new)["providers"]
    for name, kind in _names(old.providers, new.providers):
        if kind == "added":
            provider = new.providers[name]
            where = shown_new[name]["base_url"] or "its default URL"
            prices = provider.price_table or "no price table"
            yield Change(
                "providers",
                name,
                kind,
                (f"{provider.kind} at {where}, billing {provider.billing_owner}, prices {prices}",),
            )
        elif kind == "removed":
            yield Change("providers", name, kind)
        else:
            before, after = old.providers[name], new.providers[name]
            details = _field_changes(
                _set(before, after),
                _set(after, before),
                _set(before, after, shown_old[name]),
                _set(after, before, shown_new[name]),
            )
            if details:
                yield Change("providers", name, "changed", tuple(details))


def _set(settings: ProviderSettings, other: ProviderSettings, shown: dict[str, Any] | None = None) -> dict[str, Any]:
    """A provider's settings to compare with `other`'s: where its kind changed, a setting
    only one of the two kinds has, left at its default, is no change worth naming."""
    values = settings.model_dump() if shown is None else shown
    return {
        key: value
        for key, value in values.items()
        if key in type(other).model_fields or getattr(settings, key) != type(settings).model_fields[key].default
    }


def _billing_owners(old: Config, new: Config) -> Iterator[Change]:
    before, after = _owners(old), _owners(new)
    for owner, kind in _names(before, after):
        if kind == "added":
            yield Change("billing owners", owner, kind, (f"billed for {', '.join(after[owner])}",))
        elif kind == "removed":
            yield Change("billing owners", owner, kind, (f"was billed for {', '.join(before[owner])}",))
        elif before[owner] != after[owner]:
            detail = f"billed for {', '.join(before[owner])} → {', '.join(after[owner])}"
            yield Change("billing owners", owner, kind, (detail,))


def _price_tables(old: Config, new: Config) -> Iterator[Change]:
    for name, kind in _names(_tables_in_use(old), _tables_in_use(new)):
        if kind == "added":
            table = price_table(new, name)
            yield Change(
                "price tables", name, kind, (f"{table.source}, {len(table.models)} models, by {table.provider}",)
            )
        elif kind == "removed":
            yield Change("price tables", name, kind)
        else:
            before, after = price_table(old, name), price_table(new, name)
            raw_before, raw_after = _without(before.model_dump(), "models"), _without(after.model_dump(), "models")
            details = _field_changes(raw_before, raw_after, raw_before, raw_after)
            for model, model_kind in _names(before.models, after.models):
                if model_kind != "changed":
                    details.append(f"{model}: {model_kind}")
                else:
                    prices_before = before.models[model].model_dump(exclude_none=True)
                    prices_after = after.models[model].model_dump(exclude_none=True)
                    details += _field_changes(prices_before, prices_after, prices_before, prices_after, prefix=model)
            if details:
                yield Change("price tables", name, "changed", tuple(details))


def _other_settings(old: Config, new: Config) -> Iterator[Change]:
    """Everything else, path by path: server, ledger, state, files, keys, teams, policies, console."""
    raw_old, raw_new = old.model_dump(), new.model_dump()
    shown_old, shown_new = redacted_config(old), redacted_config(new)
    for section in ("server", "ledger", "state", "files", "keys", "teams", "policies", "console"):
        if section == "keys":  # a list, but each key has an id: compare by id
            raw_before, raw_after = _by_id(raw_old["keys"]), _by_id(raw_new["keys"])
            shown_before, shown_after = _by_id(shown_old["keys"]), _by_id(shown_new["keys"])
        elif section == "console":
            raw_before, raw_after = _console_by_id(raw_old["console"]), _console_by_id(raw_new["console"])
            shown_before, shown_after = _console_by_id(shown_old["console"]), _console_by_id(shown_new["console"])
        else:
            raw_before, raw_after = raw_old[section], raw_new[section]
            shown_before, shown_after = shown_old[section], shown_new[section]
        for detail in _field_changes(raw_before, raw_after, shown_before, shown_after, prefix=section):
            path = detail.split(":")[0].removesuffix(" changed")
            if any(path == setting or path.startswith(setting + ".") for setting in RESTART_ONLY):
                detail += " (takes effect at the next restart)"
            yield Change("other settings", detail, "changed")


# --- comparing values ----------------------------------------------------------------------


def _field_changes(raw_old: Any, raw_new: Any, shown_old: Any, shown_new: Any, prefix: str = "") -> list[str]:
    """Each changed leaf as `path: old → new`, compared on the real values and shown
    from the redacted ones; a secret (or a value holding one) shows only `changed`."""
    if isinstance(raw_old, Mapping) and isinstance(raw_new, Mapping):
        changes = []
        for key in [*raw_old, *(key for key in raw_new if key not in raw_old)]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in raw_new:
                changes.append(f"{path}: removed")
            elif key not in raw_old:
                changes.append(f"{path}: added {_shown(_get(shown_new, key))}")
            else:
                changes += _field_changes(raw_old[key], raw_new[key], _get(shown_old, key), _get(shown_new, key), path)
        return changes
    if raw_old == raw_new:
        return []
    if shown_old == shown_new or MASK in _shown(shown_old) + _shown(shown_new):
        return [f"{prefix} changed"]
    return [f"{prefix}: {_shown(shown_old)} → {_shown(shown_new)}"]


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_shown(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"  # 180, not 180.0
    return str(value)


def _get(value: Any, key: Any) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _names(old: Iterable[str], new: Iterable[str]) -> Iterator[tuple[str, Literal["added", "removed", "changed"]]]:
    """Every name in either, in the order the files list them; `changed` may be unchanged."""
    old, new = list(old), list(new)
    for name in old:
        yield name, "changed" if name in new else "removed"
    for name in new:
        if name not in old:
            yield name, "added"


def _without(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in keys}


def _by_id(keys: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {key["id"]: _without(key, "id") for key in keys or ()}


def _console_by_id(console: dict[str, Any]) -> dict[str, Any]:
    return {**console, "keys": _by_id(console["keys"])}


def _targets(targets: list[Target], *, weights: bool = True) -> str:
    if not targets:
        return "(none)"
    return ", ".join(
        f"{target.provider}/{target.model}" + (f" (weight {target.weight:g})" if weights else "") for target in targets
    )


def _plan(targets: list[Target], fallbacks: list[Target]) -> str:
    plan = f"targets {_targets(targets)}"
    return plan + (f"; fallbacks {_targets(fallbacks, weights=False)}" if fallbacks else "")


def _owners(config: Config) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for name, provider in config.providers.items():
        owners.setdefault(provider.billing_owner, []).append(name)
    return owners


def _tables_in_use(config: Config) -> list[str]:
    """The config's own tables, and the built-in ones its providers name."""
    used = [provider.price_table for provider in config.providers.values() if provider.price_table]
    return list(dict.fromkeys([*config.price_tables, *used]))
