"""The admin API under `/admin`: ledger rows, their review, spend reports, the
loaded config and its reload. Only `server.admin_key` opens it; a client key does not."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from providers.errors import ProxyError

from ..config.redaction import redacted_config
from ..errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from ..finance.ledger_queries import (
    RequestsQuery,
    ReviewBody,
    SpendQuery,
    find_requests,
    focus_stream,
    known_row,
    record_review,
    spend_group_by,
    spend_report,
    validated,
)
from ..finance.reports import check_focus_options, render
from ..ledger import DisabledLedger, Ledger
from ..serving.gateway import Gateway
from .app_state import app_state
from .intake import read_body

_SPEND_PARAMETERS = {"group_by": "group_by", "aggregate": "aggregate", "format": "format=focus"}
_SEND_THE_ADMIN_KEY = "Send the admin key (`server.admin_key`) as `Authorization: Bearer <admin key>`."


class ConfigRefused(InvalidRequest):
    code = "config_invalid"


class ReloadIncomplete(ProxyError):
    status = 504
    code = "reload_incomplete"


# --- who may call ----------------------------------------------------------------------------


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


# --- endpoints ---------------------------------------------------------------------------------


async def get_request(request: Request) -> Response:
    require_admin(request)
    row = await known_row(_ledger(request), request.path_params["request_id"])
    return JSONResponse(row.public())


async def list_requests(request: Request) -> Response:
    require_admin(request)
    query = validated(RequestsQuery, dict(request.query_params), where="query parameter")
    rows = await find_requests(_ledger(request), query)
    return JSONResponse({"object": "list", "data": [row.public() for row in rows]})


async def review_request(request: Request) -> Response:
    require_admin(request)
    gateway: Gateway = request.state.gateway
    body = await read_body(request, gateway.max_body_bytes)
    review = validated(ReviewBody, _json_object(body), where="field")
    row = await record_review(_ledger(request), request.path_params["request_id"], review)
    return JSONResponse(row.public())


async def spend(request: Request) -> Response:
    require_admin(request)
    query = validated(SpendQuery, dict(request.query_params), where="query parameter")
    check_focus_options(query.format, grouping=query.group_by, aggregate=query.aggregate, spelled=_SPEND_PARAMETERS)
    group_by = spend_group_by(query.group_by)
    if query.format == "focus":
        pieces = await focus_stream(_ledger(request), query.since, query.until, daily=query.aggregate == "daily")
        return StreamingResponse(pieces, media_type="text/csv")
    report = await spend_report(_ledger(request), group_by, query.since, query.until)
    if query.format == "csv":
        return Response(render(report, "csv"), media_type="text/csv")
    return Response(render(report, "json"), media_type="application/json")


async def config(request: Request) -> Response:
    require_admin(request)
    gateway: Gateway = request.state.gateway
    return JSONResponse({"version": gateway.version, "config": redacted_config(gateway.config)})


async def reload_config(request: Request) -> Response:
    require_admin(request)
    reloader = app_state(request).reloader
    if reloader is None:
        raise ProxyError("This app was not started from a config file, so it cannot reload one.", code="no_config_file")
    outcome = await reloader.reload("admin")
    if outcome.result == "failed":
        raise ConfigRefused(
            f"The config at {reloader.source} was not loaded: {len(outcome.errors)} error(s). "
            f"The previous config (version {outcome.version}) keeps serving. Fix the file and reload again: "
            + "; ".join(outcome.errors)
        )
    if lagging := outcome.lagging:
        shown = ", ".join(f"worker {pid} serves {version}" for pid, version in sorted(lagging.items()))
        raise ReloadIncomplete(
            f"Config version {outcome.version} serves on this worker, but not yet on every worker ({shown}). "
            "Check the proxy's log for their errors, then reload again."
        )
    return JSONResponse(outcome.document())


def _ledger(request: Request) -> Ledger | DisabledLedger:
    return app_state(request).ledger


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidRequest('Send a JSON object: {"status": "approved"|"rejected", "reviewer": "...", "note": "..."}.')
    return parsed


admin_routes = [
    Route("/admin/requests", list_requests, methods=["GET"]),
    Route("/admin/requests/{request_id}", get_request, methods=["GET"]),
    Route("/admin/requests/{request_id}/review", review_request, methods=["POST"]),
    Route("/admin/spend", spend, methods=["GET"]),
    Route("/admin/config", config, methods=["GET"]),
    Route("/admin/reload", reload_config, methods=["POST"]),
]
