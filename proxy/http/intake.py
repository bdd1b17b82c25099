"""From an HTTP request to a typed `Call`: the body read within its size limit, parsed
once, and the few fields that routing, policies and pricing need pulled out.
Everything else in the body passes through untouched.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from providers.types import Call, ImageSettings, JsonBody, MultipartBody, RequestBody, Surface

from ..errors import BodyIncomplete, BodyTooLarge, InvalidRequest
from .field_types import FORM_FIELDS, IMAGE_SETTINGS, INTEGER_SETTINGS, READ_FIELDS, check_fields, json_kind
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
        fields, expected = _form_values(body.fields), FORM_FIELDS
    else:
        body = JsonBody(raw, _json_object(raw))
        fields, expected = body.fields, READ_FIELDS[surface]
    if fields.get("model") in (None, ""):
        raise InvalidRequest(
            "`model` is required: name one of the routes listed by GET /v1/models",
            param="model",
            code="missing_required_parameter",
        )
    check_fields(fields, expected)  # from here on, every field Tollgate reads has its type
    return Call(
        request_id=request_id,
        surface=surface,
        model=fields["model"],
        stream=bool(fields.get("stream")),
        body=body,
        image=_image_settings(surface, fields, body),
        prompt_version=_prompt_version(request, fields),
        timeout_s=_timeout_override(request),
        continues=_continued_id(fields) if surface is Surface.RESPONSES else None,
        max_output_tokens=_output_limit(surface, fields),
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
        kind = json_kind(parsed)
        raise InvalidRequest(f'The request body must be a JSON object such as {{"model": …}}, not {kind}.')
    return parsed


def _form_values(form: dict[str, str]) -> dict[str, Any]:
    """A form's text as the JSON values it stands for, where Tollgate reads a number or
    a flag; text that is neither is kept, for check_fields to name."""
    values: dict[str, Any] = dict(form)
    for name in INTEGER_SETTINGS & form.keys():
        text = form[name].strip()
        if text.isascii() and text.isdigit():
            values[name] = int(text)
    if (flag := form.get("stream", "").lower()) in ("true", "false"):
        values["stream"] = flag == "true"
    return values


def _image_settings(surface: Surface, fields: dict[str, Any], body: RequestBody) -> ImageSettings | None:
    if surface.makes_images:
        settings = _settings(fields)
        if isinstance(body, MultipartBody):
            inputs = tuple(file for file in body.files if file.field in ("image", "image[]"))
            mask = next((file for file in body.files if file.field == "mask"), None)
            return ImageSettings(**settings, input_images=len(inputs), inputs=inputs, mask=mask)
        references = fields.get("images")  # the JSON form of an edit
        return ImageSettings(**settings, input_images=len(references) if references else 0)
    if surface is Surface.RESPONSES:
        found = _image_tool(fields.get("tools"))
        if found is not None:
            index, tool = found
            check_fields(tool, IMAGE_SETTINGS, location=f"tools[{index}].")
            return ImageSettings(**_settings(tool), input_images=_input_image_count(fields.get("input")))
    return None


def _settings(fields: dict[str, Any]) -> dict[str, Any]:
    """The image settings, their types checked; unsaid counts take OpenAI's defaults."""
    settings = {name: fields.get(name) for name in IMAGE_SETTINGS}
    settings["n"] = 1 if settings["n"] is None else settings["n"]
    settings["partial_images"] = settings["partial_images"] or 0
    return settings


def _image_tool(tools: list[dict[str, Any]] | None) -> tuple[int, dict[str, Any]] | None:
    """The `image_generation` tool, and where it sits in `tools`."""
    return next(
        ((index, tool) for index, tool in enumerate(tools or ()) if tool.get("type") == "image_generation"), None
    )


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


def _continued_id(fields: dict[str, Any]) -> str | None:
    """The response or conversation a Responses request follows up: where it must go."""
    previous, conversation = fields.get("previous_response_id"), fields.get("conversation")
    if previous is not None and conversation is not None:
        raise InvalidRequest(
            "`previous_response_id` and `conversation` cannot be used together: send one of them.",
            param="conversation",
        )
    if previous is not None:
        if not isinstance(previous, str) or not previous:
            raise InvalidRequest(
                f"`previous_response_id` must be the id of an earlier response, such as 'resp_…' "
                f"(got {_shown(previous)})",
                param="previous_response_id",
            )
        return previous
    if conversation is None:
        return None
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else conversation
    if not isinstance(conversation_id, str) or not conversation_id:
        raise InvalidRequest(
            "`conversation` must be a conversation id, such as 'conv_…', or an object with that `id` "
            f"(got {_shown(conversation)})",
            param="conversation",
        )
    return conversation_id


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _prompt_version(request: Request, fields: dict[str, Any]) -> str | None:
    if version := request.headers.get(PROMPT_VERSION_HEADER):
        return version[:200]
    version = (fields.get("metadata") or {}).get("prompt_version")
    return version[:200] if version is not None else None


def _output_limit(surface: Surface, fields: dict[str, Any]) -> int | None:
    """The most output the request allows (tokens), where it sets one."""
    if surface is Surface.RESPONSES:
        return fields.get("max_output_tokens")
    if surface is Surface.CHAT:
        return fields.get("max_completion_tokens") or fields.get("max_tokens")
    return None


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


def purpose(request: Request) -> str | None:
    """What the request is for (e.g. launch_check), kept in the ledger; not a metric label."""
    value = request.headers.get(PURPOSE_HEADER)
    return value[:64] if value else None


def estimate_only(request: Request) -> bool:
    return request.headers.get(ESTIMATE_ONLY_HEADER, "").lower() in ("true", "1", "yes")
