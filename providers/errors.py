"""The one error family of Tollgate: each error knows its HTTP status, its
OpenAI error type and code, and the closed-set reason that ledger rows and
metrics record. Raised once where the problem is found, rendered once at the edge.
"""

from __future__ import annotations

import math
from enum import StrEnum

import orjson


class FailureReason(StrEnum):
    """Why a request failed. A closed set, so metric labels stay bounded."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_5XX = "upstream_5xx"
    CONNECT_ERROR = "connect_error"
    BAD_UPSTREAM_RESPONSE = "bad_upstream_response"
    POLICY_REFUSED = "policy_refused"
    INVALID_REQUEST = "invalid_request"
    AUTH = "auth"
    BUDGET_EXCEEDED = "budget_exceeded"
    NO_PROVIDER = "no_provider"
    STATE_UNAVAILABLE = "state_unavailable"  # the store that budgets and rate limits need is unreachable
    CLIENT_CLOSED = "client_closed"  # the client hung up before the answer was complete


class ProxyError(Exception):
    """An error the client sees in OpenAI's shape: `{"error": {message, type, param, code}}`."""

    status: int = 500
    error_type: str = "server_error"
    reason: FailureReason = FailureReason.NO_PROVIDER
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}
        )


# --- the client's request is at fault -------------------------------------------------


class InvalidRequest(ProxyError):
    status = 400
    error_type = "invalid_request_error"
    reason = FailureReason.INVALID_REQUEST


class BodyTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class BodyIncomplete(InvalidRequest):
    """The client stopped sending the body: it closed the connection, or was too slow."""

    status = 408
    code = "request_timeout"


class UnknownRoute(InvalidRequest):
    status = 404
    code = "model_not_found"


class UnsupportedByProvider(InvalidRequest):
    """What was asked is beyond the provider's kind (a LiteLLM vendor keeps no stored
    Responses that Tollgate can reach); asking again will not help."""

    code = "unsupported_by_provider"


class AuthenticationFailed(ProxyError):
    status = 401
    error_type = "invalid_request_error"
    reason = FailureReason.AUTH
    code = "invalid_api_key"


class PermissionDenied(ProxyError):
    status = 403
    error_type = "permission_error"
    reason = FailureReason.AUTH
    code = "permission_denied"


class StateUnavailable(ProxyError):
    """The state store (Redis) cannot be reached: what depends on it is refused, not guessed."""

    status = 503
    error_type = "server_error"
    reason = FailureReason.STATE_UNAVAILABLE
    code = "state_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "1"})


class InternalError(ProxyError):
    """A bug in Tollgate. The message never carries the exception's text: it may hold secrets."""

    status = 500
    error_type = "server_error"
    reason = FailureReason.BAD_UPSTREAM_RESPONSE
    code = "internal_error"


# --- the upstream failed in a way another try may cure --------------------------------


class UpstreamFailure(ProxyError):
    """A failed attempt. The router retries it, falls back, or finally reports it."""

    status = 502
    error_type = "server_error"
    reason = FailureReason.UPSTREAM_5XX
    #: Try the same provider again? False when only another provider can help.
    retry_same_provider = True

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class UpstreamTimeout(UpstreamFailure):
    status = 504
    error_type = "timeout_error"
    reason = FailureReason.TIMEOUT
    code = "upstream_timeout"


class UpstreamConnectError(UpstreamFailure):
    status = 503
    error_type = "server_error"
    reason = FailureReason.CONNECT_ERROR
    code = "upstream_unreachable"


class UpstreamRateLimited(UpstreamFailure):
    status = 429
    error_type = "rate_limit_error"
    reason = FailureReason.RATE_LIMITED
    code = "upstream_rate_limited"


class UpstreamServerError(UpstreamFailure):
    status = 502
    reason = FailureReason.UPSTREAM_5XX
    code = "upstream_error"


class BadUpstreamResponse(UpstreamFailure):
    status = 502
    reason = FailureReason.BAD_UPSTREAM_RESPONSE
    code = "bad_upstream_response"


class UpstreamRejectedCredentials(UpstreamFailure):
    """The provider refused our key or the model (401/403/404): our config's fault, not the client's."""

    status = 502
    reason = FailureReason.AUTH
    code = "upstream_auth_failed"
    retry_same_provider = False


# --- a rule of the operator's says no -------------------------------------------------


class PolicyRefused(ProxyError):
    """A policy (policies/) refused the request. The message names the rule and what to
    change; `policy` is the rule's name, recorded in the ledger and the failure metric."""

    status = 400
    error_type = "invalid_request_error"
    reason = FailureReason.POLICY_REFUSED
    code = "policy_refused"

    def __init__(
        self,
        policy: str,
        message: str,
        *,
        status: int | None = None,
        reason: FailureReason | None = None,
        retry_after_s: float | None = None,
        **kwargs,
    ) -> None:
        headers = {"retry-after": str(max(1, math.ceil(retry_after_s)))} if retry_after_s is not None else None
        super().__init__(message, headers=headers, **kwargs)
        self.policy = policy
        if status is not None:
            self.status = status
            self.error_type = {403: "permission_error", 429: "rate_limit_error"}.get(status, self.error_type)
        if reason is not None:
            self.reason = reason
