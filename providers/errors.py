"""The root of Tollgate's one error family, and the errors of upstreams.

Each error knows its HTTP status, its OpenAI error type and code, and the
closed-set reason that ledger rows and metrics record. Raised once where the
problem is found, rendered once at the edge. Each error lives with the part that
raises it (providers and policies never import the proxy):

    ProxyError                          the client sees it in OpenAI's shape    (here)
    ├── UpstreamFailure                 an attempt failed; retry or fall back   (here)
    │   ├── UpstreamTimeout             504
    │   ├── UpstreamConnectError        503
    │   ├── UpstreamRateLimited         429
    │   ├── UpstreamServerError         502
    │   ├── BadUpstreamResponse         502
    │   └── UpstreamRejectedCredentials 502, never retried on the same provider
    ├── UnsupportedByProvider           400, beyond the provider's kind         (here)
    ├── PolicyRefused                   a rule of the operator's says no        (policies/base.py)
    ├── StateUnavailable                503, the counters' store is unreachable (policies/counters.py)
    ├── InvalidRequest                  400, the client's request is at fault   (proxy/errors.py)
    │   ├── BodyTooLarge                413
    │   ├── BodyIncomplete              408
    │   └── UnknownRoute                404
    ├── AuthenticationFailed            401                                     (proxy/errors.py)
    ├── PermissionDenied                403                                     (proxy/errors.py)
    ├── ConversationsUnavailable        503, the conversation map's store       (proxy/errors.py)
    └── InternalError                   500, a bug in Tollgate                  (proxy/errors.py)
"""

from __future__ import annotations

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


# --- what was asked is beyond the provider ---------------------------------------------


class UnsupportedByProvider(ProxyError):
    """What was asked is beyond the provider's kind (a LiteLLM vendor keeps no stored
    Responses that Tollgate can reach); asking again will not help."""

    status = 400
    error_type = "invalid_request_error"
    reason = FailureReason.INVALID_REQUEST
    code = "unsupported_by_provider"
