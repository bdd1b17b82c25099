"""The admin API under `/admin`: ledger rows, their review, spend reports, the
loaded config and its reload. Only `server.admin_key` opens it; a client key does not."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, Router

from providers.errors import ProxyError

from ..config.redaction import redacted_config
from ..errors import InvalidRequest
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
from .admin_key import require_admin
from .app_state import app_state
from .intake import read_body

_SPEND_PARAMETERS = {"group_by": "group_by", "aggregate": "aggregate", "format": "format=focus"}


class ConfigRefused(InvalidRequest):
    code = "config_invalid"


class ReloadIncomplete(ProxyError):
    status = 504
    code = "reload_incomplete"


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


# Mounted at /admin (app.py), imported at its first request.
admin_app = Router(
    routes=[
        Route("/requests", list_requests, methods=["GET"]),
        Route("/requests/{request_id}", get_request, methods=["GET"]),
        Route("/requests/{request_id}/review", review_request, methods=["POST"]),
        Route("/spend", spend, methods=["GET"]),
        Route("/config", config, methods=["GET"]),
        Route("/reload", reload_config, methods=["POST"]),
    ]
)
