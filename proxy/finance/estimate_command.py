"""`tollgate estimate`: the request a client would send to a route, priced before
it is sent on each provider the route may use, exactly as the proxy's
`x-tollgate-estimate-only` answer prices it.

Which request: an image generation when the route makes images (a target's model
has per-image prices in its provider's table, or is a gpt-image model) or when
`--size`, `--quality` or `--input-images` is given; with `--input-images K`, an
edit of K inputs taken as 1024x1024. An embedding when the route's models are
embedding models. Otherwise a chat completion with the prompt.
"""

from __future__ import annotations

import random
import typing
from dataclasses import dataclass
from typing import Any

import orjson

from providers.image_tokens import is_gpt_image_model
from providers.types import Call, ImageSettings, JsonBody, Surface

from ..config import Config, Route
from ..config.schema import SIZE_PATTERN, Quality
from ..config.tables import price_table
from ..errors import InvalidRequest
from ..pricing import Pricer
from ..serving.estimate_document import estimate_document
from ..serving.routing import Router

_QUALITIES: tuple[str, ...] = typing.get_args(Quality)


@dataclass(frozen=True, slots=True)
class Asked:
    """What the command line asks for; None where the route's defaults apply."""

    model: str
    size: str | None = None
    quality: str | None = None
    n: int = 1
    prompt: str = ""
    input_images: int = 0


def estimate(config: Config, asked: Asked) -> tuple[Call, dict[str, Any]]:
    """The request, and its estimate document. Raises the proxy's own errors (an
    unknown route is its 404) for the command to print."""
    _check(asked)
    # A fixed seed: the same config prints the same order of weighted targets every time.
    plan = Router(config.routes, rng=random.Random(0)).plan(asked.model)
    call = request_for(config, asked)
    return call, estimate_document(call, plan, Pricer(config))


def request_for(config: Config, asked: Asked) -> Call:
    surface = _surface(config, asked)
    fields: dict[str, Any] = {"model": asked.model}
    image = None
    if surface.makes_images:
        launch = config.routes[asked.model].target
        size = asked.size or (launch.size if launch else None)
        quality = asked.quality or (launch.quality if launch else None)
        fields |= {"prompt": asked.prompt, "n": asked.n}
        fields |= {name: value for name, value in (("size", size), ("quality", quality)) if value is not None}
        if asked.input_images:
            # The JSON form of an edit: references, which the estimate takes as 1024x1024 inputs.
            fields["images"] = [
                {"image_url": f"https://example.invalid/input-{i}.png"} for i in range(asked.input_images)
            ]
        image = ImageSettings(size=size, quality=quality, n=asked.n, input_images=asked.input_images)
    elif surface is Surface.EMBEDDINGS:
        fields["input"] = asked.prompt
    else:
        fields["messages"] = [{"role": "user", "content": asked.prompt}]
    body = JsonBody(orjson.dumps(fields), fields)
    return Call(request_id="estimate", surface=surface, model=asked.model, stream=False, body=body, image=image)


def _surface(config: Config, asked: Asked) -> Surface:
    if asked.input_images:
        return Surface.IMAGES_EDIT
    if asked.size or asked.quality or makes_images(config, asked.model):
        return Surface.IMAGES_GENERATE
    if serves_embeddings(config.routes[asked.model]):
        return Surface.EMBEDDINGS
    return Surface.CHAT


def serves_embeddings(route: Route) -> bool:
    return all("embedding" in target.model for target in [*route.targets, *route.fallbacks])


def makes_images(config: Config, route_name: str) -> bool:
    """The route's models are image models: GPT Image, or priced per image by their provider."""
    if is_gpt_image_model(route_name):
        return True
    route = config.routes[route_name]
    for target in [*route.targets, *route.fallbacks]:
        if is_gpt_image_model(target.model):
            return True
        table_name = config.providers[target.provider].price_table
        prices = price_table(config, table_name).models.get(target.model) if table_name else None
        if prices is not None and prices.image is not None:
            return True
    return False


def _check(asked: Asked) -> None:
    if asked.size is not None and not SIZE_PATTERN.match(asked.size):
        raise InvalidRequest(f"--size must be WIDTHxHEIGHT (e.g. 1024x1536) or auto, not '{asked.size}'")
    if asked.quality is not None and asked.quality not in _QUALITIES:
        raise InvalidRequest(f"--quality must be one of {', '.join(_QUALITIES)}, not '{asked.quality}'")
    if asked.n < 1:
        raise InvalidRequest(f"--n must be 1 or more, not {asked.n}")
    if asked.input_images < 0:
        raise InvalidRequest(f"--input-images must be 0 or more, not {asked.input_images}")


# --- the table -------------------------------------------------------------------------------


def describe(call: Call, document: dict[str, Any]) -> str:
    """The estimate for people: one block per candidate provider, in the order they are tried."""
    retries = document["retries"]
    lines = [f"{document['route']}: {_request(call)}; {retries} retr{'y' if retries == 1 else 'ies'} per provider"]
    for estimate in document["estimates"]:
        role = "fallback" if estimate["fallback"] else "target"
        lines += ["", f"{estimate['provider']} ({role})  model {estimate['model']}"]
        lines.append(f"  billing owner  {estimate['billing_owner']}")
        if estimate["price_table"] is None:
            lines.append(f"  unpriced       {estimate['unpriced']}")
            continue
        lines.append(f"  price table    {estimate['price_table']} ({estimate['price_source']})")
        lines.append(f"  estimate       {estimate['estimated_cost_usd']} USD")
        lines.append(
            f"  with retries   {estimate['with_retries_usd']} USD "
            f"(a failed try costs {estimate['failed_attempt_usd']} USD here)"
        )
        lines += ["  cost lines", *_cost_lines(estimate["lines"])]
    return "\n".join(lines)


def _request(call: Call) -> str:
    image = call.image
    if image is None:
        return str(call.surface)
    said = [f"n={image.n}", f"size {image.size or 'auto'}", f"quality {image.quality or 'auto'}"]
    if image.input_images:
        said.append(f"{image.input_images} input image(s) of 1024x1024")
    return f"{call.surface} ({', '.join(said)})"


def _cost_lines(lines: list[dict[str, Any]]) -> list[str]:
    cells = [
        [line["model"], line["item"], str(line["quantity"]), line["unit_usd"], line["amount_usd"]] for line in lines
    ]
    widths = [max((len(row[column]) for row in cells), default=0) for column in range(5)]
    return [
        f"    {model:<{widths[0]}}  {item:<{widths[1]}}  {quantity:>{widths[2]}} x {unit:<{widths[3]}}  = {amount}"
        for model, item, quantity, unit, amount in cells
    ]
