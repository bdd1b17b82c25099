"""Who may use the console, and which pages each may open. The admin key opens every
page; a console key (`console.keys`) has one role: a reviewer decides on images,
finance reads the bill. Keys are matched by their SHA-256 digests in constant time,
with the same machinery as client keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from ...config.schema import Config
from ...serving.auth import key_digest, match_digest

ADMIN_ID = "admin"  # the id the admin key's decisions are recorded under


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    FINANCE = "finance"


class Area(StrEnum):
    """A part of the console; each page belongs to one."""

    REVIEW = "review"
    SPEND = "spend"
    REQUESTS = "requests"


_OPENS: dict[Role, tuple[Area, ...]] = {  # in the order the navigation shows them; the first is the landing page
    Role.ADMIN: (Area.REVIEW, Area.SPEND, Area.REQUESTS),
    Role.REVIEWER: (Area.REVIEW, Area.REQUESTS),
    Role.FINANCE: (Area.SPEND, Area.REQUESTS),
}


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: str  # the console key's id, or `admin`: the reviewer a decision is recorded under
    role: Role

    @property
    def areas(self) -> tuple[Area, ...]:
        return _OPENS[self.role]

    def may_open(self, area: Area) -> bool:
        return area in self.areas

    @property
    def landing_page(self) -> str:
        return f"/ui/{self.areas[0].value}"


@dataclass(frozen=True, slots=True)
class ConsoleKeys:
    """The keys that open the console under one config: the admin key and `console.keys`."""

    entries: tuple[tuple[bytes, ConsoleUser], ...]

    @classmethod
    def of(cls, config: Config) -> ConsoleKeys:
        entries = [(key_digest(key), ConsoleUser(key.id, Role(key.role))) for key in config.console.keys]
        admin_key = config.server.admin_key.get_secret_value() if config.server.admin_key else ""
        if admin_key:
            entries.append((hashlib.sha256(admin_key.encode()).digest(), ConsoleUser(ADMIN_ID, Role.ADMIN)))
        return cls(tuple(entries))

    @property
    def any(self) -> bool:
        return bool(self.entries)

    def sign_in(self, key: str) -> ConsoleUser | None:
        """The user this key belongs to, or None: every key is compared, each in constant time."""
        return match_digest(self.entries, key.strip()) if key.strip() else None

    def digest_of(self, user: ConsoleUser) -> bytes | None:
        """The digest of `user`'s key under this config; None once the key or its role is gone."""
        for digest, known in self.entries:
            if known == user:
                return digest
        return None
