"""What is wrong with a config, said so that its author can fix it: each issue with
its location in the file (`routes.gpt-image-2.targets[0].provider`), and pydantic's
schema errors rewritten that way, with the keys the schema allows where one is unknown."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from providers.registry import KINDS

from .schema import Config


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    location: str  # e.g. routes.gpt-image-2.targets[0].provider
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(Exception):
    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: {len(issues)} error(s)\n" + "\n".join(f"  {issue}" for issue in issues))


def schema_issues(exc: ValidationError) -> Iterator[ConfigIssue]:
    for error in exc.errors():
        loc = error["loc"]
        location = ""
        for part in _walk(loc)[0]:
            location = f"{location}[{part}]" if isinstance(part, int) else join_location(location, part)
        kind = error["type"]
        if kind == "extra_forbidden":
            yield ConfigIssue(location, _unknown_key_message(loc))
        elif kind == "missing":
            yield ConfigIssue(location, "required, but missing")
        elif kind == "union_tag_not_found":  # a provider without `kind`
            yield ConfigIssue(join_location(location, "kind"), "required, but missing")
        elif kind == "union_tag_invalid":  # an unknown provider kind
            expected = error["ctx"]["expected_tags"].rsplit(", ", 1)
            yield ConfigIssue(
                join_location(location, "kind"),
                f"Input should be {' or '.join(expected)} (got {_shown(error['ctx']['tag'])})",
            )
        else:
            message = error["msg"].removeprefix("Value error, ")
            yield ConfigIssue(location, f"{message} (got {_shown(error['input'])})" if _showable(error) else message)


def _unknown_key_message(loc: tuple) -> str:
    key = str(loc[-1])
    where = _unwrap(_walk(loc[:-1])[1])
    owners = [kind for kind, settings in KINDS.items() if key in settings.model_fields and settings is not where]
    if where in KINDS.values() and owners:  # a setting of another provider kind
        kind = where.model_fields["kind"].annotation.__args__[0]
        return f"unknown key '{key}' for a provider of kind '{kind}': it is a setting of kind {', '.join(owners)}"
    known = _keys_at(loc[:-1])
    hint = difflib.get_close_matches(key, known, n=1)
    if hint:
        return f"unknown key '{key}'; did you mean '{hint[0]}'?"
    return f"unknown key '{key}'; known keys here: {', '.join(known)}" if known else f"unknown key '{key}'"


def _keys_at(loc: tuple) -> list[str]:
    """The keys the schema allows at `loc`."""
    node = _unwrap(_walk(loc)[1])
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _walk(loc: tuple) -> tuple[list[str | int], Any]:
    """`loc` as a reader sees it, and the schema type it reaches, found by walking the
    model types. Where a union is tagged (a provider's `kind`), pydantic's `loc` names
    the member taken: that part is left out, and the walk goes on in the member."""
    node: Any = Config
    shown: list[str | int] = []
    for part in loc:
        node = _unwrap(node)
        members = _tagged_members(node)
        if part in members:
            node = members[part]
            continue
        shown.append(part)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            node = field.annotation if field is not None else None
        elif typing.get_origin(node) in (dict, list):
            node = typing.get_args(node)[-1]
        else:
            node = None
    return shown, node


def _tagged_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """The members of a union of models tagged by `kind`, by tag; else nothing."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return {}
    members = {}
    for member in typing.get_args(annotation):
        field = member.model_fields.get("kind") if isinstance(member, type) and issubclass(member, BaseModel) else None
        if field is None or typing.get_origin(field.annotation) is not typing.Literal:
            return {}
        members[typing.get_args(field.annotation)[0]] = member
    return members


def _unwrap(annotation: Any) -> Any:
    """`Route | None` → `Route`; `Annotated[X, …]` → X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        else:
            return annotation


_SECRET_FIELDS = {"key", "api_key", "admin_key", "headers", "session_secret"}


def _showable(error: Any) -> bool:
    """Echo a bad value only when it is a plain scalar outside any secret field, and
    not a URL that may carry a password (`redis://:pw@host`)."""
    value = error.get("input")
    secret = any(part in _SECRET_FIELDS for part in error["loc"])
    credentials = isinstance(value, str) and "://" in value and "@" in value
    return isinstance(value, (str, int, float, Decimal, bool)) and not secret and not credentials


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def join_location(location: str, key: object) -> str:
    """`routes` and `gpt-image-2`: `routes.gpt-image-2`."""
    return f"{location}.{key}" if location else str(key)
