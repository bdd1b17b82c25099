"""The errors the proxy itself raises: the client's request is at fault, or the proxy
is. The family's root and the upstreams' errors are in providers/errors.py, whose
docstring draws the whole tree; a policy's refusal is in policies/base.py."""

from __future__ import annotations

from providers.errors import FailureReason, ProxyError


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


class ConversationsUnavailable(ProxyError):
    """The store of the conversation map (Redis) cannot be reached: what depends on it is
    refused, not guessed. The counters' store has its own (policies.counters.StateUnavailable)."""

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
