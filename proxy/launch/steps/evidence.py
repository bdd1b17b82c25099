"""What several steps check the same way: an answer's status, the image it carries,
and the request's ledger row with its cost."""

from __future__ import annotations

from typing import Any

from ...pricing import Pricer
from ...pricing.usage import Metered
from ..api import Answer
from ..context import LaunchContext
from ..pictures import NotAnImage, Picture, decode_picture
from ..step import Findings


def answered(found: Findings, answer: Answer) -> bool:
    """The answer is a success; its status is evidence either way."""
    found.note(answer.describe())
    return found.require(answer.ok, f"HTTP {answer.status}: {answer.error_message}")


def picture(found: Findings, b64: str | None) -> Picture | None:
    try:
        decoded = decode_picture(b64)
    except NotAnImage as problem:
        found.require(False, str(problem))
        return None
    found.note(f"image {decoded.describe()}")
    return decoded


def image_of(found: Findings, answer: Answer) -> Picture | None:
    """The first image of an Image API answer."""
    return picture(found, answer.body.data[0].b64_json if answer.body.data else None)


def billed_row(launch: LaunchContext, found: Findings, answer: Answer) -> dict[str, Any] | None:
    """The request's finished ledger row, which must be `ok` with a cost and its price table."""
    if not found.require(bool(answer.request_id), "the answer carries no x-request-id"):
        return None
    row = launch.api.row(answer.request_id or "")
    if not found.require(row is not None, f"no ledger row for {answer.request_id}"):
        return None
    assert row is not None
    found.require(row["status"] == "ok", f"the ledger row says {row['status']} ({row['error_type']})")
    if found.require(row["cost_usd"] is not None, _unpriced(launch, row)):
        found.note(f"ledger: cost ${row['cost_usd']} on {row['price_table']} ({row['price_source']})")
    return row


def _unpriced(launch: LaunchContext, row: dict[str, Any]) -> str:
    """Why a row has no cost: its usage, priced again on its provider's table, names the gap."""
    usage = Metered(
        row["upstream_model"],
        text_input=row["input_text_tokens"] or 0,
        image_input=row["input_image_tokens"] or 0,
        text_output=row["output_text_tokens"] or 0,
        image_output=row["output_image_tokens"] or 0,
        images=row["images"] or 0,
        size=row["size"],
        quality=row["quality"],
    )
    priced = Pricer(launch.config).price((usage,), row["route"], row["provider"], row["upstream_model"])
    why = priced.unpriced or "its usage is missing"
    return f"the ledger row has no cost (cost_basis {row['cost_basis']}): {why}"
