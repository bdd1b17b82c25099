"""Step 8: the launch log. Every ledger row the check wrote has what the launch
rules ask of it: request id, route owner, model (or tool), prompt version, file
URL where files are stored, cost and review status, and the launch-check purpose."""

from __future__ import annotations

import typing
from typing import Any

from ...ledger.row import ReviewStatus
from ..api import PROMPT_VERSION, PURPOSE, Sent
from ..context import LaunchContext
from ..step import Findings, Skip, Step

_REVIEW_STATUSES = typing.get_args(ReviewStatus)


def check_launch_log(launch: LaunchContext, found: Findings) -> None:
    api = launch.api
    if not api.sent:
        raise Skip("no request of the check reached the proxy")
    stores_files = launch.config.files is not None
    for sent in api.sent:
        # A stored image's URL reaches the row a moment after the row itself.
        row = api.row(
            sent.request_id, ready=lambda seen: not (stores_files and _made_images(seen)) or seen["file_urls"]
        )
        if not found.require(row is not None, f"{sent.request_id} (step {sent.step}, {sent.what}): no ledger row"):
            continue
        assert row is not None
        gaps = missing(row, sent, launch, stores_files=stores_files)
        found.require(not gaps, f"{sent.request_id} (step {sent.step}, {sent.what}) lacks {', '.join(gaps)}")
        found.note(_summary(row, sent))


def missing(row: dict[str, Any], sent: Sent, launch: LaunchContext, *, stores_files: bool) -> list[str]:
    """What the launch rules ask of a row that it does not have."""
    gaps = []
    if row["request_id"] != sent.request_id:
        gaps.append("its request id")
    if not row["route_owner"]:
        gaps.append("the route owner")
    if not row["upstream_model"]:
        gaps.append("the model")
    if row["prompt_version"] != PROMPT_VERSION:
        gaps.append(f"the prompt version {PROMPT_VERSION} (it has {row['prompt_version']})")
    if row["purpose"] != PURPOSE:
        gaps.append(f"purpose {PURPOSE} (it has {row['purpose']})")
    if row["cost_usd"] is None:
        gaps.append("a cost")
    if row["review_status"] not in _REVIEW_STATUSES:
        gaps.append("a review status")
    elif _made_images(row) and _reviewed(row, launch) and row["review_status"] == "not_required":
        gaps.append(f"review (route {row['route']} has review: required; the row says not_required)")
    if stores_files and _made_images(row) and not row["file_urls"]:
        gaps.append("a file URL (files: is configured)")
    return gaps


def _made_images(row: dict[str, Any]) -> bool:
    return row["status"] == "ok" and bool(row["images"])


def _reviewed(row: dict[str, Any], launch: LaunchContext) -> bool:
    route = launch.config.routes.get(row["route"] or "")
    return route is not None and route.review == "required"


def _summary(row: dict[str, Any], sent: Sent) -> str:
    tools = sorted({line["model"] for line in row["cost_lines"]} - {row["upstream_model"]})
    model = row["upstream_model"] + (f" + tool {', '.join(tools)}" if tools else "")
    files = f", {len(row['file_urls'])} file(s)" if row["file_urls"] else ""
    return (
        f"{row['request_id']} step {sent.step} {row['surface']} {row['status']} {row['http_status']} "
        f"${row['cost_usd']} owner {row['route_owner']} model {model} review {row['review_status']}{files}"
    )


LAUNCH_LOG = Step(
    8,
    "Launch log",
    "every ledger row the check wrote has its request id, route owner, model or tool, prompt version, file URL "
    "(where files are stored), cost, review status, and purpose launch_check",
    check_launch_log,
)
