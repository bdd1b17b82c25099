"""Client keys: who is calling. Keys are held only as SHA-256 digests and
compared in constant time; without a `keys:` section the proxy runs open."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from policies.base import Caller

from ..config.schema import ClientKey, KeySecret
from ..errors import AuthenticationFailed, PermissionDenied

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str | None  # None when the proxy runs open
    team: str | None
    routes: frozenset[str] | None  # None: every route
    stage: str = "production"

    @property
    def caller(self) -> Caller:
        """Who is asking, as policies see it."""
        return Caller(self.key_id, self.team, self.stage)

    def may_use(self, route: str) -> bool:
        return self.routes is None or route in self.routes

    @property
    def owner(self) -> str | None:
        """Whose responses these are: a team's keys share theirs; None when the proxy runs open."""
        if self.team is not None:
            return f"team:{self.team}"
        return f"key:{self.key_id}" if self.key_id is not None else None

    def check_route(self, route: str) -> None:
        if not self.may_use(route):
            raise PermissionDenied(
                f"Key '{self.key_id}' may not use route '{route}'; it may use: {', '.join(sorted(self.routes))}. "
                "Ask the operator to add the route to the key's `routes`.",
                param="model",
            )


ANONYMOUS = Principal(key_id=None, team=None, routes=None)


class KeyRing:
    def __init__(self, keys: Sequence[ClientKey] | None) -> None:
        self.open = keys is None
        self._entries = tuple((key_digest(key), _principal(key)) for key in keys or ())

    def authenticate(self, authorization: str | None) -> Principal:
        if self.open:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(
                "No API key given. Send your Tollgate key as `Authorization: Bearer <key>` (the SDK's `api_key`)."
            )
        found = match_digest(self._entries, token.strip())
        if found is None:
            raise AuthenticationFailed("The API key is not valid for this proxy. Check the key you were given.")
        return found


def key_digest(key: KeySecret) -> bytes:
    """The SHA-256 a configured key is held as, whether given as `key` or as `key_sha256`."""
    if key.key is not None:
        return hashlib.sha256(key.key.get_secret_value().encode()).digest()
    return bytes.fromhex(key.key_sha256 or "")


def match_digest(entries: Iterable[tuple[bytes, T]], token: str) -> T | None:
    """What the entry whose digest is the token's holds, or None. Every entry is compared,
    in constant time: the time taken says nothing about which key matched, or how nearly."""
    digest = hashlib.sha256(token.encode()).digest()
    found: T | None = None
    for entry_digest, value in entries:
        if hmac.compare_digest(entry_digest, digest):
            found = value
    return found


def _principal(key: ClientKey) -> Principal:
    routes = frozenset(key.routes) if key.routes is not None else None
    return Principal(key_id=key.id, team=key.team, routes=routes, stage=key.stage)


KEY_PREFIX = "tg-"


def new_key() -> tuple[str, str]:
    """A fresh client key and the SHA-256 digest the config holds instead of it."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()
