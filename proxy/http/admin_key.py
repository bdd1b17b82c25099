"""Who may call the admin API (and read any stored file): only `server.admin_key`; a
client key does not."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from ..errors import AuthenticationFailed, PermissionDenied
from ..serving.gateway import Gateway

_SEND_THE_ADMIN_KEY = "Send the admin key (`server.admin_key`) as `Authorization: Bearer <admin key>`."


def require_admin(request: Request) -> None:
    gateway: Gateway = request.state.gateway
    admin_key = gateway.config.server.admin_key
    if admin_key is None or not admin_key.get_secret_value():
        raise PermissionDenied(
            "The admin API is off: this proxy has no admin key. Set `server.admin_key` in the config "
            "(e.g. `admin_key: ${TOLLGATE_ADMIN_KEY}`) and restart the proxy."
        )
    authorization = request.headers.get("authorization")
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed(f"No admin key given. {_SEND_THE_ADMIN_KEY}")
    # Digests first: compare_digest then compares equal lengths, and the time taken says nothing of the key.
    given = hashlib.sha256(token.encode()).digest()
    if hmac.compare_digest(given, hashlib.sha256(admin_key.get_secret_value().encode()).digest()):
        return
    if not gateway.keys.open and _is_client_key(gateway, authorization):
        raise PermissionDenied(f"This is a client key; the admin API takes only the admin key. {_SEND_THE_ADMIN_KEY}")
    raise AuthenticationFailed(f"The admin key is not valid. {_SEND_THE_ADMIN_KEY}")


def _is_client_key(gateway: Gateway, authorization: str | None) -> bool:
    try:
        gateway.keys.authenticate(authorization)
    except AuthenticationFailed:
        return False
    return True
