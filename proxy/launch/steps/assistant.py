"""Step 5, the assistant flow: Responses with a mainline model and the
`image_generation` tool works, and the image model in Responses' `model` field is
refused by Tollgate's guard before any upstream call."""

from __future__ import annotations

from policies.base import PolicyRefused
from policies.responses_model_guard import ResponsesModelGuard

from ...config import Config
from ...finance.estimate_command import makes_images, serves_embeddings
from ..context import LaunchContext
from ..step import Findings, Skip, Step
from .evidence import answered, billed_row, picture

TOOL_PROMPT = "Draw a plain blue square on a white background."
GUARD_CODE = PolicyRefused.code


def responses_route(config: Config, image_route: str) -> str | None:
    """The route an assistant calls: the first whose models are mainline models, not image or embedding models."""
    for name, route in config.routes.items():
        if name != image_route and not makes_images(config, name) and not serves_embeddings(route):
            return name
    return None


def check_assistant_flow(launch: LaunchContext, found: Findings) -> None:
    assistant = responses_route(launch.config, launch.route_name)
    if assistant is None:
        raise Skip("the config has no Responses route (a route whose model is a mainline model, such as gpt-5.4)")
    api = launch.api
    image_model = launch.route.targets[0].model
    tool = {"type": "image_generation", "model": image_model, "quality": "low"}
    answer = api.send(
        5,
        f"Responses: {assistant} + image_generation tool",
        api.openai.responses.with_raw_response.create,
        model=assistant,
        input=TOOL_PROMPT,
        tools=[tool],
    )
    found.note(f"{assistant} with the image_generation tool ({image_model}):")
    if answered(found, answer):
        calls = [item for item in answer.body.output if item.type == "image_generation_call"]
        if found.require(bool(calls), "the answer has no image_generation_call item"):
            picture(found, calls[0].result)
    billed_row(launch, found, answer)

    refusal = api.send(
        5,
        f"Responses naming {launch.route_name}",
        api.openai.responses.with_raw_response.create,
        model=launch.route_name,
        input=TOOL_PROMPT,
        tools=[{"type": "image_generation"}],
    )
    found.note(f"{launch.route_name} in Responses' model field: {refusal.describe()}")
    code = refusal.error.code if refusal.error is not None else None
    if not found.require(
        refusal.status == 400 and code == GUARD_CODE,
        f"Responses with model {launch.route_name} got HTTP {refusal.status} ({code or 'no code'}: "
        f"{refusal.error_message or 'a success'}), not the Responses model guard's 400 {GUARD_CODE}",
    ):
        return
    found.require(
        "image_generation" in refusal.error_message,
        f"the refusal does not point to the image_generation tool: {refusal.error_message}",
    )
    found.note(f"refused: {refusal.error_message}")
    row = api.row(refusal.request_id or "")
    recorded = (row["error_type"], row["policy"]) if row else (None, None)
    if found.require(
        recorded == (GUARD_CODE, ResponsesModelGuard.name),
        f"its ledger row says error_type {recorded[0]}, policy {recorded[1]}; "
        f"expected {GUARD_CODE}, {ResponsesModelGuard.name}",
    ):
        found.note(f"ledger: error_type {GUARD_CODE}, policy {ResponsesModelGuard.name}")


ASSISTANT_FLOW = Step(
    5,
    "Assistant flow",
    "where the config has a Responses route: its mainline model with the image_generation tool makes an image, and "
    "a Responses request naming the image model as `model` is refused by the guard (400 policy_refused)",
    check_assistant_flow,
)
