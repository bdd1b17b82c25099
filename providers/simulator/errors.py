"""The simulator's one error: everything it refuses, in OpenAI's error envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .json_bytes import dumps


class SimError(Exception):
    """An answer in OpenAI's shape `{"error": {message, type, param, code}}`.

    Raised where the problem is found (validation, auth, an injected fault) and
    rendered once by the app, so every refusal looks like the real upstream's.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        # Extra keys beside message/type/param/code, e.g. `moderation_details`.
        self.details = dict(details or {})

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        error.update(self.details)
        return dumps({"error": error})


def invalid_value(param: str, value: object, allowed: tuple[str, ...]) -> SimError:
    """OpenAI's wording for an enum field with a value outside its set."""
    choices = ", ".join(f"'{choice}'" for choice in allowed[:-1]) + f", and '{allowed[-1]}'"
    return SimError(
        400,
        f"Invalid value: '{value}'. Supported values are: {choices}.",
        param=param,
        code="invalid_value",
    )


def missing_parameter(param: str) -> SimError:
    return SimError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )
