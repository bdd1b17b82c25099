"""The admin API under `/admin`: ledger rows, their review, spend reports, the
loaded config and its reload. Only `server.admin_key` opens it; a client key does not."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from providers.errors import AuthenticationFailed, InvalidRequest, PermissionDenied, ProxyError

from .gateway import Gateway
from .intake import read_body
from .ledger import Filters, Ledger, LedgerRow, SqlLedger, utc_now
from .ledger.row import ReviewStatus, Status
from .redaction import redacted_config
from .reloading import Reloader
from .reports import check_focus_options, parse_bound, parse_group_by, render, spend_report

_SPEND_PARAMETERS = {"group_by": "group_by", "aggregate": "aggregate", "format": "format=focus"}
_SEND_THE_ADMIN_KEY = "Send the admin key (`server.admin_key`) as `Authorization: Bearer <admin key>`."


class UnknownRequestId(InvalidRequest):
    status = 404
    code = "request_not_found"


class ReviewNotRequired(InvalidRequest):
    status = 409
    code = "review_not_required"


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


# --- what callers send -------------------------------------------------------------------------

Bound = Annotated[str, AfterValidator(parse_bound)]  # ISO 8601 date or datetime, normalised to UTC


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestsQuery(_Query):
    since: Bound | None = None
    until: Bound | None = None  # exclusive
    route: str | None = None
    provider: str | None = None
    status: Status | None = None
    review_status: ReviewStatus | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class SpendQuery(_Query):
    group_by: str | None = None  # checked by parse_group_by, which names the allowed fields
    since: Bound | None = None
    until: Bound | None = None
    format: Literal["json", "csv", "focus"] = "json"
    aggregate: Literal["daily"] | None = None  # with format=focus


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["approved", "rejected"]
    reviewer: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=10_000)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: Any, *, where: str) -> M:
    """The model, or a 400 that names the first bad parameter and what it should be."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "extra_forbidden":
            message = f"Unknown {where} '{name}'; known: {', '.join(model.model_fields)}."
        else:
            message = f"`{name}`: {error['msg'].removeprefix('Value error, ')}"
        raise InvalidRequest(message, param=name) from None


# --- endpoints ---------------------------------------------------------------------------------


async def get_request(request: Request) -> Response:
    require_admin(request)
    row = await _known_row(request)
    return JSONResponse(row.public())


async def list_requests(request: Request) -> Response:
    require_admin(request)
    query = _validated(RequestsQuery, dict(request.query_params), where="query parameter")
    filters = Filters(
        since=query.since,
        until=query.until,
        route=query.route,
        provider=query.provider,
        status=query.status,
        review_status=query.review_status,
    )
    rows = await _ledger(request).find(filters, query.limit)
    return JSONResponse({"object": "list", "data": [row.public() for row in rows]})


async def review_request(request: Request) -> Response:
    require_admin(request)
    gateway: Gateway = request.state.gateway
    body = await read_body(request, gateway.max_body_bytes)
    review = _validated(ReviewBody, _json_object(body), where="field")
    request_id = request.path_params["request_id"]
    record = {"reviewer": review.reviewer, "note": review.note, "reviewed_at": utc_now()}

    def set_review(sql: SqlLedger, connection: Any) -> LedgerRow:
        row = sql.get(connection, request_id)
        if row is None:
            raise _unknown(request_id)
        if row.review_status == "not_required":
            raise ReviewNotRequired(
                f"Request {row.request_id} needs no review: its route does not set `review: required`.",
                param="status",
            )
        sql.set_review(connection, request_id, review.status, record)
        return sql.get(connection, request_id) or row

    # One read through the barrier: the row as of now, its review, and the row reviewed.
    return JSONResponse((await _ledger(request).read(set_review)).public())


async def spend(request: Request) -> Response:
    require_admin(request)
    query = _validated(SpendQuery, dict(request.query_params), where="query parameter")
    check_focus_options(query.format, grouping=query.group_by, aggregate=query.aggregate, spelled=_SPEND_PARAMETERS)
    try:
        group_by = parse_group_by(query.group_by)
    except InvalidRequest as error:
        error.param = "group_by"
        raise
    filters = Filters(since=query.since, until=query.until)
    if query.format == "focus":
        from .focus import focus_csv  # a finance export: not worth its import at every start-up

        daily = query.aggregate == "daily"
        text = await _ledger(request).export(filters, lambda rows: focus_csv(rows, daily=daily))
        return Response(text, media_type="text/csv")
    report = await _ledger(request).read(lambda sql, connection: spend_report(sql, connection, group_by, filters))
    if query.format == "csv":
        return Response(render(report, "csv"), media_type="text/csv")
    return Response(render(report, "json"), media_type="application/json")


async def config(request: Request) -> Response:
    require_admin(request)
    gateway: Gateway = request.state.gateway
    return JSONResponse({"version": gateway.version, "config": redacted_config(gateway.config)})


async def reload_config(request: Request) -> Response:
    require_admin(request)
    reloader: Reloader | None = request.app.state.reloader
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


def _ledger(request: Request) -> Ledger:
    return request.app.state.ledger


async def _known_row(request: Request) -> LedgerRow:
    request_id = request.path_params["request_id"]
    row = await _ledger(request).get(request_id)
    if row is None:
        raise _unknown(request_id)
    return row


def _unknown(request_id: str) -> UnknownRequestId:
    shown = request_id if len(request_id) <= 64 else request_id[:61] + "..."
    return UnknownRequestId(
        f"No ledger row for request id '{shown}'. Ids are in each response's `x-request-id` header; "
        "check the id, and that this proxy shares its ledger database with the one that answered.",
        param="request_id",
    )


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
