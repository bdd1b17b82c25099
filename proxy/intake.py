"""From an HTTP request to a typed `Call`: the body read within its size limit, parsed
once, and the few fields that routing, policies and pricing need pulled out.
Everything else in the body passes through untouched.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import ClientDisconnect, Request

from providers.errors import BodyIncomplete, BodyTooLarge, InvalidRequest
from providers.types import Call, ImageSettings, JsonBody, MultipartBody, RequestBody, Surface

from .multipart import parse_multipart

TIMEOUT_HEADER = "x-tollgate-timeout-s"
PROMPT_VERSION_HEADER = "x-prompt-version"
PURPOSE_HEADER = "x-tollgate-purpose"
ESTIMATE_ONLY_HEADER = "x-tollgate-estimate-only"


async def read_call(request: Request, surface: Surface, request_id: str, *, max_body_bytes: int) -> Call:
    raw = await read_body(request, max_body_bytes)
    content_type = request.headers.get("content-type", "")
    body: RequestBody
    if content_type.startswith("multipart/form-data"):
        if surface is not Surface.IMAGES_EDIT:
            raise InvalidRequest(f"POST /v1/{surface.path} takes a JSON body; multipart is for /v1/images/edits")
        body = parse_multipart(raw, content_type)
    else:
        body = JsonBody(raw, _json_object(raw))

    fields = body.fields
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("`model` is required: name one of the routes listed by GET /v1/models", param="model")
    return Call(
        request_id=request_id,
        surface=surface,
        model=model,
        stream=_flag(fields.get("stream"), "stream"),
        body=body,
        image=_image_settings(surface, body),
        prompt_version=_prompt_version(request, fields),
        timeout_s=_timeout_override(request),
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyIncomplete(
            f"The request body stopped after {received} bytes: the client closed the connection, or took "
            "longer than server.client_body_timeout_s to send it. Send the whole body promptly."
        ) from None
    return b"".join(chunks)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"The request body is larger than this proxy accepts ({limit // (1024 * 1024)} MiB). "
        "Send smaller images, or ask the operator to raise server.max_body_mb."
    )


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest('The request body is empty; send a JSON object such as {"model": …}.')
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON ({exc}). Send a JSON object.") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest(f"The request body must be a JSON object, not a JSON {type(parsed).__name__}.")
    return parsed


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):  # multipart fields are text
        return value.lower() == "true"
    raise InvalidRequest(f"`{name}` must be true or false (got {value!r})", param=name)


class _ImageFields(BaseModel):
    """The image settings of a request, typed; the body itself is passed on as it came."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    size: str | None = None
    quality: str | None = None
    n: int = 1
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    partial_images: int = 0


def _image_settings(surface: Surface, body: RequestBody) -> ImageSettings | None:
    if surface.makes_images:
        settings = _typed_image_fields(body.fields, location="")
        if isinstance(body, MultipartBody):
            inputs = tuple(file for file in body.files if file.field in ("image", "image[]"))
            mask = next((file for file in body.files if file.field == "mask"), None)
            return ImageSettings(**settings, input_images=len(inputs), inputs=inputs, mask=mask)
        references = body.fields.get("images")  # the JSON form of an edit
        return ImageSettings(**settings, input_images=len(references) if isinstance(references, list) else 0)
    if surface is Surface.RESPONSES:
        tool = _image_tool(body.fields.get("tools"))
        if tool is not None:
            return ImageSettings(
                **_typed_image_fields(tool, location="tools[image_generation]."),
                input_images=_input_image_count(body.fields.get("input")),
            )
    return None


def _typed_image_fields(fields: dict[str, Any], *, location: str) -> dict[str, Any]:
    try:
        return _ImageFields.model_validate(fields).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = f"{location}{error['loc'][0]}"
        shown = repr(error["input"])
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise InvalidRequest(f"`{name}`: {error['msg'].lower()} (got {shown})", param=name) from None


def _image_tool(tools: Any) -> dict[str, Any] | None:
    if not isinstance(tools, list):
        return None
    return next((tool for tool in tools if isinstance(tool, dict) and tool.get("type") == "image_generation"), None)


def _input_image_count(items: Any) -> int:
    """Images a Responses request hands the model: `input_image` parts in its messages."""
    if not isinstance(items, list):
        return 0
    count = 0
    for item in items:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "input_image")
    return count


def _prompt_version(request: Request, fields: dict[str, Any]) -> str | None:
    if version := request.headers.get(PROMPT_VERSION_HEADER):
        return version[:200]
    metadata = fields.get("metadata")
    version = metadata.get("prompt_version") if isinstance(metadata, dict) else None
    return str(version)[:200] if version is not None else None


def _timeout_override(request: Request) -> float | None:
    value = request.headers.get(TIMEOUT_HEADER)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise InvalidRequest(f"`{TIMEOUT_HEADER}` must be a number of seconds above 0 (got {value!r})")
    return seconds


def with_stream_usage(call: Call) -> tuple[Call, bool]:
    """A chat stream reports its usage only when asked to. Ask on the client's
    behalf, so its cost comes from usage and not from a guess; the returned flag
    says the client did not ask, so the usage chunk must not reach it."""
    if call.surface is not Surface.CHAT or not call.stream or not isinstance(call.body, JsonBody):
        return call, False
    options = call.body.fields.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        return call, False
    fields = {**call.body.fields, "stream_options": {**(options or {}), "include_usage": True}}
    return replace(call, body=JsonBody(orjson.dumps(fields), fields)), True


def purpose(request: Request) -> str | None:
    """What the request is for (e.g. launch_check), kept in the ledger; not a metric label."""
    value = request.headers.get(PURPOSE_HEADER)
    return value[:64] if value else None


def estimate_only(request: Request) -> bool:
    return request.headers.get(ESTIMATE_ONLY_HEADER, "").lower() in ("true", "1", "yes")
