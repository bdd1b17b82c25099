"""Reading `config.yaml`: YAML with exact decimals, `${VAR}` / `${VAR:-default}`
from the environment, the typed schema, and the cross-references between sections.
Every problem is collected with its location, so one run shows them all.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from providers.price_tables import BUILTIN_TABLE_NAMES
from providers.registry import KINDS

from .issues import ConfigError, ConfigIssue, join_location, schema_issues
from .schema import Config


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: Config
    version: str  # a digest of the file's text: which config a request ran under
    source: str


def load_config(path: str | Path, env: Mapping[str, str]) -> LoadedConfig:
    return parse_config(read_config_text(path), env, source=str(path))


def read_config_text(path: str | Path) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [ConfigIssue("", f"cannot read the file: {exc.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [_not_utf8(raw, exc.start)]) from None


def _not_utf8(raw: bytes, offset: int) -> ConfigIssue:
    """Where the first byte that is not UTF-8 sits, as a YAML error's location would say it."""
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return ConfigIssue(
        f"line {line}, column {column}",
        f"not UTF-8 text: byte 0x{raw[offset]:02x} at offset {offset}; save the file as UTF-8",
    )


def config_version(text: str) -> str:
    """A digest of the file's text: which config a request ran under."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_config(text: str, env: Mapping[str, str], *, source: str = "<config>") -> LoadedConfig:
    try:
        raw = yaml.load(text, Loader=ExactYamlLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigIssue(_yaml_position(exc), _yaml_problem(exc))]) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            source, [ConfigIssue("", "the file must be a mapping of sections (server, providers, routes, …)")]
        )

    issues: list[ConfigIssue] = []
    raw = _interpolate(raw, env, "", issues)
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        issues.extend(schema_issues(exc))
    issues.extend(_reference_issues(raw))
    if issues or config is None:
        raise ConfigError(source, issues)
    return LoadedConfig(config=config, version=config_version(text), source=source)


# --- YAML --------------------------------------------------------------------------------


class ExactYamlLoader(yaml.SafeLoader):
    """Floats load as Decimal, so `0.009` is exactly 0.009 dollars; duplicate keys are errors."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}': the second would silently replace the first", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


ExactYamlLoader.add_constructor("tag:yaml.org,2002:float", _decimal)
ExactYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _yaml_position(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return f"not valid YAML: {getattr(exc, 'problem', None) or exc}"


# --- ${VAR} interpolation ------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, env: Mapping[str, str], location: str, issues: list[ConfigIssue]) -> Any:
    if isinstance(value, dict):
        return {key: _interpolate(item, env, join_location(location, key), issues) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, env, f"{location}[{index}]", issues) for index, item in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(
            ConfigIssue(location, f"environment variable {name} is not set; set it, or write ${{{name}:-default}}")
        )
        return ""

    return _VARIABLE.sub(substitute, value)


# --- references between sections -----------------------------------------------------------


def _reference_issues(raw: dict) -> Iterator[ConfigIssue]:
    """Names that must point at something. Works on the raw file, so these show
    together with schema errors instead of after they are fixed."""
    providers = _mapping(raw.get("providers"))
    routes = _mapping(raw.get("routes"))
    tables = _mapping(raw.get("price_tables"))

    for name in tables:
        if name in BUILTIN_TABLE_NAMES:
            yield ConfigIssue(f"price_tables.{name}", f"'{name}' is built in; give your table another name")
    known_tables = set(tables) | BUILTIN_TABLE_NAMES
    official = {name for name, table in tables.items() if _mapping(table).get("source") == "official"}
    official |= BUILTIN_TABLE_NAMES
    for name, provider in providers.items():
        provider = _mapping(provider)
        table = provider.get("price_table")
        if isinstance(table, str) and table not in known_tables:
            yield ConfigIssue(
                f"providers.{name}.price_table", f"unknown price table '{table}'{_choices(table, known_tables)}"
            )
        elif _bills_own_prices(provider.get("kind")) and table in official:
            # A gateway or reseller bills its own prices; labelling them official would hide its markup.
            yield ConfigIssue(
                f"providers.{name}.price_table",
                f"'{table}' is a vendor's official list price, but '{name}' is a gateway or reseller that bills "
                "its own prices; give it a table of its own with `source: provider`",
            )

    for route_name, route in routes.items():
        for field in ("targets", "fallbacks"):
            for index, target in enumerate(_list(_mapping(route).get(field))):
                provider = _mapping(target).get("provider")
                if isinstance(provider, str) and provider not in providers:
                    yield ConfigIssue(
                        f"routes.{route_name}.{field}[{index}].provider",
                        f"unknown provider '{provider}'{_choices(provider, providers)}",
                    )

    seen_ids: set[str] = set()
    for index, key in enumerate(_list(raw.get("keys"))):
        key = _mapping(key)
        key_id = key.get("id")
        if isinstance(key_id, str) and key_id in seen_ids:
            yield ConfigIssue(f"keys[{index}].id", f"'{key_id}' is used by an earlier key; ids must be unique")
        seen_ids.add(key_id)
        for route_index, route in enumerate(_list(key.get("routes"))):
            if isinstance(route, str) and route not in routes:
                yield ConfigIssue(
                    f"keys[{index}].routes[{route_index}]", f"unknown route '{route}'{_choices(route, routes)}"
                )

    yield from _console_issues(raw)


def _console_issues(raw: dict) -> Iterator[ConfigIssue]:
    console = _mapping(raw.get("console"))
    keys = [_mapping(key) for key in _list(console.get("keys"))]
    seen_ids: set[str] = set()
    for index, key in enumerate(keys):
        key_id = key.get("id")
        if key_id == "admin":  # the console records the admin key's decisions as `admin`
            yield ConfigIssue(f"console.keys[{index}].id", "'admin' names the admin key; give this key another id")
        elif isinstance(key_id, str) and key_id in seen_ids:
            yield ConfigIssue(f"console.keys[{index}].id", f"'{key_id}' is used by an earlier key; ids must be unique")
        seen_ids.add(key_id)
    if keys and not console.get("session_secret") and not _mapping(raw.get("server")).get("admin_key"):
        yield ConfigIssue(
            "console.session_secret",
            "console keys need a secret to sign their sessions: set `console.session_secret: ${CONSOLE_SECRET}` "
            "(32 or more random characters, the same on every replica) or `server.admin_key`",
        )


def _bills_own_prices(kind: Any) -> bool:
    settings = KINDS.get(kind) if isinstance(kind, str) else None
    return settings is not None and settings.bills_own_prices


def _choices(name: str, known: typing.Iterable[str]) -> str:
    known = sorted(known)
    hint = difflib.get_close_matches(name, known, n=1)
    if hint:
        return f"; did you mean '{hint[0]}'?"
    return f"; known: {', '.join(known)}" if known else ""


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
