"""OpenAI's organization reports, served from what the simulator billed:
`GET /v1/organization/costs` (Costs API) and `GET /v1/organization/usage/images`
(Usage API, images), in their documented page shapes: `{"object": "page", "data":
[buckets], "has_more", "next_page"}`, each bucket `{"object": "bucket", "start_time",
"end_time", "results": [...]}`. Daily buckets only (`bucket_width=1d`, the Costs
API's one width), `group_by` as each API allows, `limit` and `page` for pagination.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qs

from .billing import Billed, BillingBook
from .errors import SimError

DAY: Final = 86_400
COSTS_GROUPS: Final = ("project_id", "line_item")
IMAGES_GROUPS: Final = ("project_id", "user_id", "api_key_id", "model", "size", "source")


def organization_report(endpoint: str, upstream: str, query: bytes, book: BillingBook, now: float) -> dict[str, Any]:
    """The page for `organization/costs` or `organization/usage/images`; SimError otherwise."""
    params = {key.removesuffix("[]"): values for key, values in parse_qs(query.decode("latin-1")).items()}
    if endpoint == "organization/costs":
        return _page(params, upstream, book, now, COSTS_GROUPS, max_limit=180, results=_costs)
    if endpoint == "organization/usage/images":
        return _page(params, upstream, book, now, IMAGES_GROUPS, max_limit=31, results=_images)
    raise SimError(404, f"Invalid URL (GET /v1/{endpoint})")


Results = Callable[[list[Billed], tuple[str, ...]], list[dict[str, Any]]]


def _page(
    params: dict[str, list[str]],
    upstream: str,
    book: BillingBook,
    now: float,
    groups: tuple[str, ...],
    *,
    max_limit: int,
    results: Results,
) -> dict[str, Any]:
    start = _integer(params, "start_time", None)
    end = _integer(params, "end_time", int(now) + 1)  # exclusive: this second's answers are in
    limit = _integer(params, "limit", 7)
    if not 1 <= limit <= max_limit:
        raise SimError(400, f"Invalid 'limit': must be between 1 and {max_limit}.", param="limit")
    if params.get("bucket_width", ["1d"]) != ["1d"]:
        raise SimError(400, "The simulator serves bucket_width=1d only.", param="bucket_width")
    group_by = tuple(params.get("group_by", []))
    if unknown := [name for name in group_by if name not in groups]:
        raise SimError(400, f"Invalid 'group_by': {unknown[0]}; use {', '.join(groups)}.", param="group_by")
    first = _integer(params, "page", start)  # the cursor is the next bucket's start
    buckets = []
    bucket_start = first
    while bucket_start < end and len(buckets) < limit:
        bucket_end = bucket_start + DAY
        served = book.of(upstream, bucket_start, min(bucket_end, end))
        buckets.append(
            {
                "object": "bucket",
                "start_time": bucket_start,
                "end_time": bucket_end,
                "results": results(served, group_by),
            }
        )
        bucket_start = bucket_end
    more = bucket_start < end
    return {"object": "page", "data": buckets, "has_more": more, "next_page": str(bucket_start) if more else None}


def _costs(served: list[Billed], group_by: tuple[str, ...]) -> list[dict[str, Any]]:
    amounts: dict[str | None, Decimal] = defaultdict(Decimal)
    for entry in served:
        for item, amount in (entry.line_items() or {}).items():
            amounts[item if "line_item" in group_by else None] += amount
    return [
        {
            "object": "organization.costs.result",
            "amount": {"value": float(amount), "currency": "usd"},  # a JSON number, as OpenAI sends it
            "line_item": item,
            "project_id": None,
        }
        for item, amount in amounts.items()
    ]


def _images(served: list[Billed], group_by: tuple[str, ...]) -> list[dict[str, Any]]:
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for entry in served:
        generation = entry.generation
        known = {"model": generation.model, "size": generation.size, "source": generation.source}
        key = tuple(known.get(name) for name in IMAGES_GROUPS if name in group_by)
        totals[key][0] += generation.images
        totals[key][1] += 1
    results = []
    for key, (images, requests) in totals.items():
        grouped = dict(zip([name for name in IMAGES_GROUPS if name in group_by], key, strict=True))
        results.append(
            {
                "object": "organization.usage.images.result",
                "images": images,
                "num_model_requests": requests,
                **{name: grouped.get(name) for name in IMAGES_GROUPS},
            }
        )
    return results


def _integer(params: dict[str, list[str]], name: str, default: int | None) -> int:
    values = params.get(name)
    if not values:
        if default is None:
            raise SimError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
        return default
    try:
        return int(values[0])
    except ValueError:
        raise SimError(400, f"Invalid '{name}': expected an integer.", param=name) from None
