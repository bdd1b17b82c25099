"""`/ui/requests`: ledger rows searched by id, route, status and review status, as
`GET /admin/requests` finds them; `/ui/requests/{id}`: one row, with every attempt,
charge and cost line, and its images."""

from __future__ import annotations

import typing

from starlette.requests import Request
from starlette.responses import Response

from ...finance.ledger_queries import RequestsQuery, find_requests, known_row, unknown_request, validated
from ...ledger.row import ReviewStatus, Status
from ...serving.gateway import Gateway
from .images import image_paths
from .pages import Visit, ledger, page, render
from .roles import Area

SEARCH_LIMIT = 100
ATTEMPT_FIELDS = (
    ("provider", "Provider"),
    ("model", "Model"),
    ("status", "HTTP status"),
    ("latency_ms", "Latency (ms)"),
    ("error", "Error"),
)


@page(Area.REQUESTS)
async def request_list(request: Request, visit: Visit) -> Response:
    given = {name: value.strip() for name, value in request.query_params.items() if value.strip()}
    request_id = given.pop("id", None)
    query = validated(RequestsQuery, {"limit": SEARCH_LIMIT, **given}, where="filter")
    problem = None
    if request_id is not None:
        row = await ledger(request).get(request_id)
        rows = [row] if row is not None else []
        if row is None:
            problem = unknown_request(request_id).message
    else:
        rows = await find_requests(ledger(request), query)
    gateway: Gateway = request.state.gateway
    context = {
        "query": query,
        "request_id": request_id or "",
        "rows": rows,
        "problem": problem,
        "routes": list(gateway.config.routes),
        "statuses": typing.get_args(Status),
        "review_statuses": typing.get_args(ReviewStatus),
    }
    return render(request, visit, "requests.html", context)


@page(Area.REQUESTS)
async def request_detail(request: Request, visit: Visit) -> Response:
    row = await known_row(ledger(request), request.path_params["request_id"])
    context = {"row": row, "images": image_paths(row), "attempt_fields": ATTEMPT_FIELDS}
    return render(request, visit, "request.html", context)
