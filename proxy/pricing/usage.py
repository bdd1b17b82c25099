"""What a request consumed, read from the upstream's answer: a JSON body or the
usage-bearing events of a stream.

Image answers are megabytes of base64, and the few fields billing needs sit
outside it. Large bodies are therefore searched, not parsed: base64 has no
quotes, so a quoted key found in the body is a real key. Small bodies are
parsed whole, which is both cheap and exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from providers.types import Surface

_PARSE_WHOLE_BELOW = 256 * 1024
_WINDOW = 16 * 1024  # how near the ends the small keys are looked for first


@dataclass(frozen=True, slots=True)
class Metered:
    """What one model consumed. Token kinds are named as price tables name them."""

    model: str
    text_input: int = 0
    cached_text_input: int = 0
    image_input: int = 0
    cached_image_input: int = 0
    text_output: int = 0
    image_output: int = 0
    images: int = 0  # images produced
    size: str | None = None  # as produced: what per-image prices are keyed by
    quality: str | None = None

    def __add__(self, other: Metered) -> Metered:
        return replace(
            self,
            text_input=self.text_input + other.text_input,
            cached_text_input=self.cached_text_input + other.cached_text_input,
            image_input=self.image_input + other.image_input,
            cached_image_input=self.cached_image_input + other.cached_image_input,
            text_output=self.text_output + other.text_output,
            image_output=self.image_output + other.image_output,
            images=self.images + other.images,
            size=self.size or other.size,
            quality=self.quality or other.quality,
        )


# One entry per model metered: a Responses call with the image tool meters two.
Usage = tuple[Metered, ...]


@dataclass(slots=True)
class Relayed:
    """The output a stream brought for its client, counted as it arrived from the upstream
    (which bills it, read or not): the part of the bill that is known when the client
    hangs up before the usage arrives."""

    text_chars: int = 0  # generated text (content, refusals, tool arguments, reasoning)
    partial_images: int = 0
    images: int = 0  # images completed
    partial_images_since_image: int = 0  # partial images of an image not yet completed


def usage_from_body(surface: Surface, body: bytes, *, model: str, image_model: str | None) -> Usage | None:
    """The usage in a complete (non-streamed) answer; None when it carries none."""
    fields = _fields(body, ("tool_usage", "size", "quality"))
    if fields is None:
        return None
    if surface.makes_images:
        images = _count_values(body, b"b64_json") or _count_values(body, b"url")
        return _image_usage(fields, model, images)
    return _text_usage(surface, fields, model, image_model, body)


def usage_from_events(
    surface: Surface, events: Iterable[bytes], *, model: str, image_model: str | None
) -> Usage | None:
    """The usage in a stream's usage-bearing events (see `SseScanner`)."""
    metered: Usage | None = None
    for event in events:
        data = event[event.find(b"data:") + 5 :] if b"data:" in event else event
        if surface.makes_images:
            found = _fields(data, ("size", "quality"))
            part = _image_usage(found, model, images=1) if found else None
        else:
            found = _fields(data, ("tool_usage", "response", "size", "quality"))
            if found and isinstance(found.get("response"), dict):
                found = found["response"]  # Responses: the usage rides inside `response`
            part = _text_usage(surface, found, model, image_model, data) if found else None
        if part:
            metered = part if metered is None else _sum(metered, part)
    return metered


# --- per surface -------------------------------------------------------------------------


def _image_usage(fields: dict[str, Any], model: str, images: int) -> Usage | None:
    usage = fields.get("usage")
    if not isinstance(usage, dict):
        return None
    metered = _image_tokens(usage, model)
    return (replace(metered, images=images, size=_text(fields.get("size")), quality=_text(fields.get("quality"))),)


def _image_tokens(usage: dict[str, Any], model: str) -> Metered:
    """Images API usage. Its `output_tokens` come without `output_tokens_details`, and
    those tokens are image tokens: priced at the image-output rate, not the text rate
    (the trap of LiteLLM issue 31142)."""
    inputs = _mapping(usage.get("input_tokens_details"))
    outputs = usage.get("output_tokens_details")
    input_tokens = _int(usage.get("input_tokens"))
    image_input = _int(inputs.get("image_tokens"))
    cached = _int(inputs.get("cached_tokens"))
    text_input = _int(inputs.get("text_tokens")) if "text_tokens" in inputs else input_tokens - image_input
    output_tokens = _int(usage.get("output_tokens"))
    if isinstance(outputs, dict):
        text_output = _int(outputs.get("text_tokens"))
        image_output = _int(outputs.get("image_tokens")) if "image_tokens" in outputs else output_tokens - text_output
    else:
        text_output, image_output = 0, output_tokens
    return Metered(
        model,
        text_input=max(text_input - cached, 0),
        cached_text_input=cached,
        image_input=image_input,
        text_output=text_output,
        image_output=image_output,
    )


def _text_usage(
    surface: Surface, fields: dict[str, Any], model: str, image_model: str | None, body: bytes = b""
) -> Usage | None:
    """`body`: what `fields` came from, searched for the image tool's images only when it drew some."""
    usage = fields.get("usage")
    if not isinstance(usage, dict):
        return None
    if surface is Surface.RESPONSES:
        cached = _int(_mapping(usage.get("input_tokens_details")).get("cached_tokens"))
        main = Metered(
            model,
            text_input=_int(usage.get("input_tokens")) - cached,
            cached_text_input=cached,
            text_output=_int(usage.get("output_tokens")),
        )
        tool = _mapping(_mapping(fields.get("tool_usage")).get("image_gen"))
        if tool.get("output_tokens") or tool.get("input_tokens"):
            drawn = _tool_images(fields, body)
            tokens = _image_tokens(tool, image_model or "gpt-image-2")
            return (main, replace(tokens, images=drawn.images, size=drawn.size, quality=drawn.quality))
        return (main,)
    cached = _int(_mapping(usage.get("prompt_tokens_details")).get("cached_tokens"))
    return (
        Metered(
            model,
            text_input=_int(usage.get("prompt_tokens")) - cached,
            cached_text_input=cached,
            text_output=_int(usage.get("completion_tokens")),
        ),
    )


def _tool_images(fields: dict[str, Any], body: bytes) -> Metered:
    """How many images the Responses image tool drew, and at what size and quality."""
    calls = [item for item in fields.get("output") or () if _mapping(item).get("type") == "image_generation_call"]
    if calls:  # the body was parsed whole
        return Metered(
            "", images=len(calls), size=_text(calls[-1].get("size")), quality=_text(calls[-1].get("quality"))
        )
    count = _count_values(body, b"result")  # each image_generation_call's image
    return Metered("", images=count, size=_text(fields.get("size")), quality=_text(fields.get("quality")))


def _sum(a: Usage, b: Usage) -> Usage:
    """Add usage per model: a stream of n images reports each image's usage apart."""
    totals: dict[str, Metered] = {}
    for part in (*a, *b):
        totals[part.model] = totals[part.model] + part if part.model in totals else part
    return tuple(totals.values())


# --- reading without parsing megabytes -----------------------------------------------------


def _fields(body: bytes, optional: tuple[str, ...]) -> dict[str, Any] | None:
    """`usage` and the `optional` top-level keys of a JSON object: parsed whole when
    small, else searched for. The few small keys sit before or after the base64, so
    they are looked for near the ends first; only `usage` is worth a search of the
    whole body when it is not there."""
    if len(body) < _PARSE_WHOLE_BELOW:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    found: dict[str, Any] = {}
    for key, anywhere in (("usage", True), *((name, False) for name in optional)):
        value = _value_after(body, key.encode(), anywhere=anywhere)
        if value is not None:
            found[key] = value
    return found


def _value_after(body: bytes, key: bytes, *, anywhere: bool) -> Any:
    """The JSON value (an object or a string) of the last `"key":` near the body's ends,
    or anywhere in it."""
    quoted = b'"' + key + b'"'
    at = body.rfind(quoted, max(len(body) - _WINDOW, 0))
    if at < 0:
        at = body.rfind(quoted, 0, _WINDOW)
    if at < 0 and anywhere:
        at = body.rfind(quoted)
    if at < 0:
        return None
    start = at + len(key) + 2
    while start < len(body) and body[start] in b" \t\r\n:":
        start += 1
    if body[start : start + 1] == b'"':
        end = body.find(b'"', start + 1)
        return body[start + 1 : end].decode() if end > 0 else None
    if body[start : start + 1] != b"{":
        return None
    depth = 0
    for index in range(start, min(len(body), start + 65536)):  # usage objects are small
        char = body[index]
        if char == 0x7B:  # {
            depth += 1
        elif char == 0x7D:  # }
            depth -= 1
            if depth == 0:
                try:
                    return orjson.loads(body[start : index + 1])
                except orjson.JSONDecodeError:
                    return None
    return None


def _count_values(body: bytes, key: bytes) -> int:
    """How many `"key": "…"` a body holds, jumping over each (base64) value with a
    one-byte search for its closing quote: far cheaper than scanning for the key."""
    needle = b'"' + key + b'"'
    count, at = 0, body.find(needle)
    while at >= 0:
        count += 1
        opening = body.find(b'"', at + len(needle))
        closing = body.find(b'"', opening + 1) if opening >= 0 else -1
        at = body.find(needle, closing + 1) if closing >= 0 else -1
    return count


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
