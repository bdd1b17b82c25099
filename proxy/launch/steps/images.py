"""Steps 2 to 4, the Image API as an app uses it: a first low-risk generation,
one edit of that image, then the route's declared target settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...config.schema import LaunchTarget
from ..context import LaunchContext
from ..step import Findings, Skip, Step
from .evidence import answered, billed_row, image_of

# Short, and no user data in them: what the launch rules ask of the first requests.
FIRST_PROMPT = "A plain red circle on a white background, flat illustration."
EDIT_PROMPT = (
    "Change only the background, to plain light grey. Keep the subject, its angle, any text and the layout as they are."
)
TARGET_PROMPT = "A lighthouse on a rocky coast at dawn, flat illustration."


def target_settings(target: LaunchTarget) -> dict[str, Any]:
    """The route's declared settings as request fields (those it declares)."""
    return {name: value for name, value in target.model_dump().items() if value is not None}


def check_first_generation(launch: LaunchContext, found: Findings) -> None:
    api = launch.api
    answer = api.send(
        2,
        "low-risk generation",
        api.openai.images.with_raw_response.generate,
        model=launch.route_name,
        prompt=FIRST_PROMPT,
        quality="low",
        n=1,
    )
    if answered(found, answer):
        launch.first_image = image_of(found, answer)
        usage = answer.body.usage
        if found.require(usage is not None and usage.output_tokens > 0, "the answer carries no usage"):
            found.note(f"usage: {usage.input_tokens} input, {usage.output_tokens} output tokens")
    billed_row(launch, found, answer)


def check_edit(launch: LaunchContext, found: Findings) -> None:
    before = launch.first_image
    if before is None:
        raise Skip("it edits the image of step 2, which did not make one")
    api = launch.api
    answer = api.send(
        3,
        "edit",
        api.openai.images.with_raw_response.edit,
        model=launch.route_name,
        image=(f"launch-check.{before.format}", before.data, before.mime_type),
        prompt=EDIT_PROMPT,
        quality="low",
        output_format=before.format,
    )
    if answered(found, answer):
        after = image_of(found, answer)
        if after is not None:
            found.require(after.size == before.size, f"the edit is {after.size}; its input was {before.size}")
            found.require(after.format == before.format, f"the edit is {after.format}; its input was {before.format}")
    row = billed_row(launch, found, answer)
    if row is not None and found.require(
        bool(row["input_image_tokens"]), "the ledger row records no image input tokens for the edit's input"
    ):
        found.note(f"ledger: {row['input_image_tokens']} image input tokens")


def check_target(launch: LaunchContext, found: Findings) -> None:
    name, route = launch.route_name, launch.route
    target = route.target
    if not found.require(
        target is not None,
        f"routes.{name}.target is not set: declare the size, quality, output format and compression it launches with",
    ):
        return
    assert target is not None
    settings = target_settings(target)
    found.note("target: " + ", ".join(f"{key} {value}" for key, value in settings.items()))
    api = launch.api
    answer = api.send(
        4,
        "target settings",
        api.openai.images.with_raw_response.generate,
        model=name,
        prompt=TARGET_PROMPT,
        n=1,
        **settings,
    )
    if answered(found, answer):
        made = image_of(found, answer)
        if made is not None and target.size not in (None, "auto"):
            found.require(made.size == target.size, f"the image is {made.size}, not the target's {target.size}")
        if made is not None and target.output_format:
            found.require(
                made.format == target.output_format, f"the image is {made.format}, not {target.output_format}"
            )
    row = billed_row(launch, found, answer)
    ceiling = route.max_request_usd
    found.require(
        ceiling is not None, f"routes.{name}.max_request_usd is not set: declare the route's cost ceiling per request"
    )
    if row is None or row["status"] != "ok" or row["cost_usd"] is None:
        return  # billed_row has said why
    launch.target_row = row
    cost = Decimal(row["cost_usd"])
    if ceiling is not None and found.require(
        cost <= ceiling, f"it cost ${cost}, above routes.{name}.max_request_usd ${ceiling}"
    ):
        found.note(f"cost ${cost} within the ceiling ${ceiling}")
    if found.require(row["latency_ms"] is not None, "the ledger row records no latency"):
        found.note(f"latency {row['latency_ms']:.0f} ms (ledger)")


FIRST_GENERATION = Step(
    2,
    "Low-risk generation",
    "a short prompt without user data, quality low, n 1: the image decodes, usage is present, the answer carries "
    "its request id, and its ledger row has a cost and a price table",
    check_first_generation,
)
EDIT = Step(
    3,
    "One edit",
    "an edit of step 2's image that changes only the background succeeds, keeps the input's size and format, "
    "and its ledger row records the image input tokens",
    check_edit,
)
TARGET = Step(
    4,
    "Target settings",
    "a request with the route's `target:` (size, quality, format, compression) makes that image, costs no more "
    "than `max_request_usd`, and its latency is recorded",
    check_target,
)
