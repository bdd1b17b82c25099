"""Requests as policies see them, built for the policy tests."""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson

from policies.base import Caller, Preflight
from providers.types import Call, ImageSettings, JsonBody, Surface

OPEN = Caller(key_id=None, team=None, stage="production")


def preflight(
    surface: Surface = Surface.IMAGES_GENERATE,
    *,
    model: str = "gpt-image-2",
    upstream_model: str | None = None,
    image: ImageSettings | None = None,
    caller: Caller = OPEN,
    estimate_usd: str | None = "0.05",
    max_request_usd: str | None = None,
    body: JsonBody | None = None,
    longest_s: float = 60,
) -> Preflight:
    """A request as policies see it; each has its own id, as requests do."""
    if image is None and surface.makes_images:
        image = ImageSettings(size="1024x1024", quality="low")
    fields = {"model": model}
    call = Call(
        request_id=f"req-test-{uuid.uuid4().hex[:12]}",
        surface=surface,
        model=model,
        stream=False,
        body=body or JsonBody(orjson.dumps(fields), fields),
        image=image,
    )
    return Preflight(
        call=call,
        route=model,
        upstream_model=upstream_model or model,
        caller=caller,
        estimate_usd=Decimal(estimate_usd) if estimate_usd is not None else None,
        max_request_usd=Decimal(max_request_usd) if max_request_usd is not None else None,
        longest_s=longest_s,
    )
