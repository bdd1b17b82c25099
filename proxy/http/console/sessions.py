"""Console sessions: a signed cookie carries a random session id, never a key; the
session itself (who, role, CSRF token, expiry, signed out) is a row in the ledger
database, which every replica already shares. So any replica can answer any page,
and signing out ends the session everywhere: a replayed cookie finds it ended.

The cookie is signed with `console.session_secret`, or without one with a secret
derived from `server.admin_key`: the same on every replica that runs the same config.
The database keeps only each session id's SHA-256, so reading it opens no session.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ...config.schema import Config
from ...ledger.sql import SqlLedger
from .roles import ConsoleUser, Role

COOKIE = "tollgate_console"
T = TypeVar("T")
_KEEP_ENDED_S = 24 * 3600  # ended and expired sessions are deleted a day later


def signing_secret(config: Config) -> bytes | None:
    """The secret that signs session cookies; None when the config gives none (no console)."""
    if config.console.session_secret is not None:
        return hashlib.sha256(config.console.session_secret.get_secret_value().encode()).digest()
    admin_key = config.server.admin_key.get_secret_value() if config.server.admin_key else ""
    if not admin_key:
        return None
    # Derived, not the key itself: the cookie's signature must reveal nothing usable at /admin.
    return hmac.new(admin_key.encode(), b"tollgate console session cookie", hashlib.sha256).digest()


def sign(secret: bytes, session_id: str) -> str:
    return f"{session_id}.{_mac(secret, 'session', session_id)}"


def unsign(secret: bytes, cookie: str) -> str | None:
    """The session id a cookie carries, if we signed it."""
    session_id, _, signature = cookie.partition(".")
    if not session_id or not hmac.compare_digest(signature.encode(), _mac(secret, "session", session_id).encode()):
        return None
    return session_id


def credential(secret: bytes, key_digest: bytes) -> str:
    """What a session remembers of the key it was opened with: rotating or removing the key ends it."""
    return _mac(secret, "key", key_digest.hex())


def _mac(secret: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Session:
    user: ConsoleUser
    credential: str
    csrf_token: str
    expires_at: int  # Unix seconds

    def csrf_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf_token.encode())


class SessionStore:
    """The `console_sessions` table, beside the ledger's own tables in its database."""

    def __init__(self, ledger_url: str) -> None:
        self.sql = SqlLedger(ledger_url)
        self._mark = "%s" if self.sql.postgres else "?"
        self._schema_made = False

    async def open(self, user: ConsoleUser, key_credential: str, hours: float) -> tuple[str, Session]:
        """A new session for `user`: its id (for the cookie) and the session."""
        session_id = secrets.token_urlsafe(32)
        now = int(time.time())
        session = Session(user, key_credential, secrets.token_urlsafe(32), now + int(hours * 3600))
        m = self._mark
        values = (_hashed(session_id), user.id, user.role.value, key_credential, session.csrf_token, now)

        def insert(cursor: Any) -> None:
            cursor.execute(f"DELETE FROM console_sessions WHERE expires_at < {m}", (now - _KEEP_ENDED_S,))
            cursor.execute(
                "INSERT INTO console_sessions (id_sha256, user_id, role, credential, csrf_token, created_at, "
                f"expires_at, ended_at) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, NULL)",
                (*values, session.expires_at),
            )

        await self._run(insert)
        return session_id, session

    async def find(self, session_id: str) -> Session | None:
        """The live session with this id: not signed out, not expired."""

        def select(cursor: Any) -> tuple | None:
            cursor.execute(
                "SELECT user_id, role, credential, csrf_token, expires_at FROM console_sessions "
                f"WHERE id_sha256 = {self._mark} AND ended_at IS NULL AND expires_at > {self._mark}",
                (_hashed(session_id), int(time.time())),
            )
            return cursor.fetchone()

        found = await self._run(select)
        if found is None:
            return None
        user_id, role, key_credential, csrf_token, expires_at = found
        return Session(ConsoleUser(user_id, Role(role)), key_credential, csrf_token, int(expires_at))

    async def end(self, session_id: str) -> None:
        def update(cursor: Any) -> None:
            cursor.execute(
                f"UPDATE console_sessions SET ended_at = {self._mark} WHERE id_sha256 = {self._mark}",
                (int(time.time()), _hashed(session_id)),
            )

        await self._run(update)

    async def _run(self, work: Callable[[Any], T]) -> T:
        def run() -> T:
            with self.sql.connect() as connection:
                cursor = connection.cursor()
                if not self._schema_made:
                    cursor.execute(
                        "CREATE TABLE IF NOT EXISTS console_sessions (id_sha256 TEXT PRIMARY KEY, user_id TEXT NOT "
                        "NULL, role TEXT NOT NULL, credential TEXT NOT NULL, csrf_token TEXT NOT NULL, created_at "
                        "BIGINT NOT NULL, expires_at BIGINT NOT NULL, ended_at BIGINT)"
                    )
                    self._schema_made = True
                return work(cursor)

        return await asyncio.to_thread(run)


def _hashed(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
