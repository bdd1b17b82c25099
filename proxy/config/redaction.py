"""The config as `GET /admin/config` shows it: every secret masked.

Secret fields are typed `SecretStr` and dump as the mask. A few values are not typed
as secrets yet carry one: a client key's SHA-256 (a weak key can be found from it
offline), a password inside a database or upstream URL, and LiteLLM parameters named
like credentials (`aws_secret_access_key`, `vertex_credentials`). Those are masked here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import Config

MASK = "**********"  # what pydantic prints for a SecretStr
_CREDENTIAL_NAME = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


def redacted_config(config: Config) -> dict[str, Any]:
    return _redact(config.model_dump(mode="json"), parent=None)


def _redact(value: Any, *, parent: str | None) -> Any:
    if isinstance(value, dict):
        return {key: _redact_entry(key, item, parent=parent) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, parent=parent) for item in value]
    if isinstance(value, str):
        return without_url_password(value)
    return value


def _redact_entry(key: str, value: Any, *, parent: str | None) -> Any:
    if value is None:
        return None
    if key == "key_sha256" or (parent == "litellm_params" and _CREDENTIAL_NAME.search(key)):
        return MASK
    return _redact(value, parent=key)


def without_url_password(text: str) -> str:
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
