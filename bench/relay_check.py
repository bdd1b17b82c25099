"""Before a row is measured, one request per exchange proves it relays the right answer:
status 200 and the same content as nginx's file. wrk then checks every answer's status
and length (post.lua); this check is what makes "200 and long enough" mean "correct"."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from processes import post
from upstream import Exchange


class RelayMismatch(Exception):
    """The row answered, but not with the upstream's answer."""


@dataclass(frozen=True, slots=True)
class RelayCheck:
    exchange: str
    body_bytes: int
    identical: bool  # byte for byte the upstream's body
    note: str  # what differs when not identical

    def to_json(self) -> dict:
        return {
            "exchange": self.exchange,
            "body_bytes": self.body_bytes,
            "identical": self.identical,
            "note": self.note,
        }


def check_relay(
    base_url: str, exchange: Exchange, api_key: str, headers: Mapping[str, str] | None = None
) -> RelayCheck:
    """`headers`: sent besides the key, as wrk sends them (Portkey's routing headers)."""
    expected = exchange.answer.read_bytes()
    status, body = post(
        base_url + exchange.path,
        exchange.request.read_bytes(),
        {"content-type": "application/json", "authorization": f"Bearer {api_key}", **(headers or {})},
    )
    if status != 200:
        raise RelayMismatch(f"{exchange.path} answered {status}: {body[:300]!r}")
    if body == expected:
        return RelayCheck(exchange.name, len(body), identical=True, note="")
    try:
        relayed = json.loads(body)
    except ValueError:
        raise RelayMismatch(f"{exchange.path} answered 200 with a body that is not JSON: {body[:300]!r}") from None
    original = json.loads(expected)
    if _content(exchange.name, relayed) != _content(exchange.name, original):
        raise RelayMismatch(f"{exchange.path} answered 200 with other content than the upstream's")
    notes = ["same content, re-serialised", _changes("fields", original, relayed)]
    notes.append(_changes("usage fields", original.get("usage") or {}, relayed.get("usage") or {}))
    return RelayCheck(exchange.name, len(body), identical=False, note="; ".join(note for note in notes if note))


def _changes(what: str, original: dict, relayed: dict) -> str:
    """'usage fields added: a; changed: b' — top-level differences only."""
    added = sorted(set(relayed) - set(original))
    dropped = sorted(set(original) - set(relayed))
    changed = sorted(key for key in set(original) & set(relayed) if original[key] != relayed[key] and key != "usage")
    parts = [
        f"{verb}: {', '.join(keys)}"
        for verb, keys in (("added", added), ("dropped", dropped), ("changed", changed))
        if keys
    ]
    return f"{what} {'; '.join(parts)}" if parts else ""


def _content(exchange: str, answer: dict) -> object:
    """What a client came for: the message text, or the image bytes."""
    try:
        if exchange == "chat":
            return answer["choices"][0]["message"]["content"]
        return answer["data"][0]["b64_json"]
    except (KeyError, IndexError, TypeError):
        return None
