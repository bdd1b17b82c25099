"""The review queue, `/ui/review`: image requests of routes with `review: required`,
pending first, and the reviewer's decision, recorded by the same function as
`POST /admin/requests/{id}/review` under the console key's id."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ...errors import InvalidRequest
from ...finance.ledger_queries import RequestsQuery, ReviewBody, find_requests, record_review, validated
from ...ledger import LedgerRow
from ...serving.gateway import Gateway
from .images import image_paths
from .pages import SECURITY_HEADERS, Visit, action, ledger, page, read_form, render, wants_json
from .roles import Area

QUEUE_LIMIT = 200  # per review status shown


class QueueFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str | None = None
    status: Literal["pending", "approved", "rejected", "all"] = "pending"
    day: dt.date | None = None


@page(Area.REVIEW)
async def review_queue(request: Request, visit: Visit) -> Response:
    shown = validated(QueueFilter, _given(request), where="filter")
    statuses = ("pending", "approved", "rejected") if shown.status == "all" else (shown.status,)
    rows: list[LedgerRow] = []
    for status in statuses:
        query = RequestsQuery(
            route=shown.route,
            review_status=status,
            since=shown.day.isoformat() if shown.day else None,
            until=(shown.day + dt.timedelta(days=1)).isoformat() if shown.day else None,
            limit=QUEUE_LIMIT,
        )
        found = await find_requests(ledger(request), query)
        if status != "pending":  # the latest decisions first
            found.sort(key=lambda row: (row.review or {}).get("reviewed_at", ""), reverse=True)
        rows += found
    gateway: Gateway = request.state.gateway
    reviewed_routes = [name for name, route in gateway.config.routes.items() if route.review == "required"]
    context = {
        "filter": shown,
        "routes": reviewed_routes,
        "items": [(row, image_paths(row)) for row in rows],
        "limit": QUEUE_LIMIT,
    }
    return render(request, visit, "review.html", context)


@action(Area.REVIEW)
async def decide(request: Request, visit: Visit) -> Response:
    form = await read_form(request)
    approve, reject = "approve" in form, "reject" in form
    if approve == reject:
        raise InvalidRequest("Press either `approve` or `reject`.", param="decision")
    note = form.get("note")
    review = validated(
        ReviewBody,
        {"status": "approved" if approve else "rejected", "reviewer": visit.user.id, "note": note or ""},
        where="field",
    )
    row = await record_review(ledger(request), request.path_params["request_id"], review)
    if wants_json(request):  # the page's script: it takes the item out of the pending list itself
        decided = {"request_id": row.request_id, "review_status": row.review_status, "review": row.review}
        return JSONResponse(decided, headers=SECURITY_HEADERS)
    return RedirectResponse("/ui/review", status_code=303, headers=SECURITY_HEADERS)


def _given(request: Request) -> dict[str, str]:
    """The filter form's fields that were filled in: an empty select means "any"."""
    return {name: value for name, value in request.query_params.items() if value}
