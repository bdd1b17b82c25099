"""`/ui/spend`: the spend report of `GET /admin/spend`, from the same function on the
same query, so its total is the endpoint's `total_usd` to the nano-dollar; the list
price beside each billed cost; a chart of cost per day stacked by the first grouping;
and the same view to download as CSV and as FOCUS."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...finance.ledger_queries import SpendQuery, focus_stream, spend_group_by, spend_report, validated
from ...finance.reports import check_focus_options, render, to_json
from ...ledger import GROUPS, from_nano
from ...pricing import usd
from .chart import daily_chart
from .pages import SECURITY_HEADERS, Visit, ledger, page
from .pages import render as render_page
from .roles import Area

LABELS = {
    "billing_owner": "Billing owner",
    "price_source": "Price source",
    "price_table": "Price table",
    "provider": "Provider",
    "route": "Route",
    "team": "Team",
    "key_id": "Key",
    "day": "Day",
    "model": "Model",
    "surface": "Surface",
    "status": "Status",
    "purpose": "Purpose",
    "simulated": "Simulated",
}
GROUPINGS_OFFERED = 3  # "group by", "then by", "then by"
_SPELLED = {"group_by": "group_by", "aggregate": "aggregate", "format": "format=focus"}


@page(Area.SPEND)
async def spend_page(request: Request, visit: Visit) -> Response:
    params = request.query_params
    grouping = ",".join(name for name in params.getlist("by") if name) or None
    since = params["since"] if "since" in params else _month_start()  # default: this month so far, UTC
    query = validated(
        SpendQuery,
        {"group_by": grouping, "since": since or None, "until": params.get("until") or None},
        where="filter",
    )
    group_by = spend_group_by(query.group_by)
    report = await spend_report(ledger(request), group_by, query.since, query.until)
    document = to_json(report)  # the endpoint's own figures, as it writes them
    first = group_by[0]
    by_day = ("day", first) if first != "day" else ("day",)
    daily = await spend_report(ledger(request), by_day, query.since, query.until)
    exported = {"group_by": ",".join(group_by), "since": query.since or "", "until": query.until or ""}
    period = {"since": query.since or "", "until": query.until or ""}
    context = {
        "group_by": group_by,
        "caption": ", then ".join(LABELS[name].lower() for name in group_by),
        "offered": [*group_by, *[""] * (GROUPINGS_OFFERED - len(group_by))],
        "fields": list(GROUPS),
        "labels": LABELS,
        "since": (query.since or "")[:10],
        "until": (query.until or "")[:10],
        "rows": [
            (row, _usd(group.list_cost_nanousd)) for row, group in zip(document["rows"], report.groups, strict=True)
        ],
        "total_usd": document["total_usd"],
        "list_total_usd": _usd(sum(group.list_cost_nanousd for group in report.groups)),
        "chart": daily_chart(first, daily.groups, query.since, query.until),
        "admin_query": urlencode({key: value for key, value in exported.items() if value}, safe=",:"),
        "csv_link": "/ui/spend/export?" + urlencode({**exported, "format": "csv"}),
        "focus_link": "/ui/spend/export?" + urlencode({**period, "format": "focus"}),
    }
    return render_page(request, visit, "spend.html", context)


@page(Area.SPEND)
async def spend_export(request: Request, visit: Visit) -> Response:
    """The page's view as a file: the CSV of `GET /admin/spend?format=csv`, or its FOCUS export."""
    given = {name: value for name, value in request.query_params.items() if value}
    query = validated(SpendQuery, given, where="query parameter")
    check_focus_options(query.format, grouping=query.group_by, aggregate=query.aggregate, spelled=_SPELLED)
    content: str | AsyncIterator[str]
    if query.format == "focus":  # sent as it is read: a month of charges never sits in memory
        content = await focus_stream(ledger(request), query.since, query.until, daily=query.aggregate == "daily")
        name = "tollgate-focus"
    else:
        report = await spend_report(ledger(request), spend_group_by(query.group_by), query.since, query.until)
        content = render(report, "json" if query.format == "json" else "csv")
        name = "tollgate-spend"
    period = "-".join(bound[:10] for bound in (query.since, query.until) if bound)
    extension = "json" if query.format == "json" else "csv"
    headers = {
        **SECURITY_HEADERS,
        "content-disposition": f'attachment; filename="{name}{"-" + period if period else ""}.{extension}"',
    }
    media_type = "application/json" if query.format == "json" else "text/csv"
    if isinstance(content, str):
        return Response(content, media_type=media_type, headers=headers)
    return StreamingResponse(content, media_type=media_type, headers=headers)


def _month_start() -> str:
    return dt.datetime.now(dt.UTC).date().replace(day=1).isoformat()


def _usd(nano: int) -> str:
    return usd(from_nano(nano) or Decimal(0))
