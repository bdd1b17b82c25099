"""What a request consumed, read from the upstream's answer: a JSON body or the
usage-bearing events of a stream.

Image answers are megabytes of base64, and the few fields billing needs sit
outside it. Large bodies are therefore searched, not parsed: base64 has no
quotes, so a quoted key found in the body is a real key. Small bodies are
parsed whole, which is both cheap and exact. A body is read as the chunks it
arrived in (`AnswerBody`): only the ends are copied out, never the whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from providers.answer_body import EMPTY, AnswerBody
from providers.types import Surface
from providers.values import value

_PARSE_WHOLE_BELOW = 256 * 1024
_WINDOW = 16 * 1024  # how near the ends the small keys are looked for first
_VALUE_MAX = 64 * 1024  # how far past its key a value is read (usage objects are small)


@value
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


def usage_from_body(surface: Surface, body: AnswerBody, *, model: str, image_model: str | None) -> Usage | None:
    """The usage in a complete (non-streamed) answer; None when it carries none."""
    # Only Responses has `tool_usage`: looking for it in an image answer would search its first bytes too.
    fields = _fields(body, ("tool_usage", "size", "quality") if surface is Surface.RESPONSES else ("size", "quality"))
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
        data = AnswerBody.of(event[event.find(b"data:") + 5 :] if b"data:" in event else event)
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
    surface: Surface, fields: dict[str, Any], model: str, image_model: str | None, body: AnswerBody = EMPTY
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


def _tool_images(fields: dict[str, Any], body: AnswerBody) -> Metered:
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


def _fields(body: AnswerBody, optional: tuple[str, ...]) -> dict[str, Any] | None:
    """`usage` and the `optional` top-level keys of a JSON object: parsed whole when
    small, else searched for. The few small keys sit before or after the base64, so
    they are looked for near the ends first; only `usage` is worth a search of the
    whole body when it is not there."""
    if len(body) < _PARSE_WHOLE_BELOW:
        try:
            parsed = orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    ends = _Ends(body)
    found: dict[str, Any] = {}
    for key, anywhere in (("usage", True), *((name, False) for name in optional)):
        value = _value_after(ends, key.encode(), anywhere=anywhere)
        if value is not None:
            found[key] = value
    return found


class _Ends:
    """A large body's two ends, where its small keys sit, each copied out once when first needed."""

    __slots__ = ("_head", "_tail", "body")

    def __init__(self, body: AnswerBody) -> None:
        self.body = body
        self._head: bytes | None = None
        self._tail: bytes | None = None

    @property
    def tail(self) -> bytes:
        """The last `_WINDOW` bytes: a key starting there has its value before the end."""
        if self._tail is None:
            self._tail = self.body.tail(_WINDOW)
        return self._tail

    @property
    def head(self) -> bytes:
        """The first `_WINDOW` bytes, and room for the value of a key found there."""
        if self._head is None:
            self._head = self.body.head(_WINDOW + _VALUE_MAX)
        return self._head


def _value_after(ends: _Ends, key: bytes, *, anywhere: bool) -> Any:
    """The JSON value (an object or a string) of the last `"key":` near the body's ends,
    or anywhere in it."""
    quoted = b'"' + key + b'"'
    for region, within in ((ends.tail, _WINDOW), (ends.head, _WINDOW)):
        at = region.rfind(quoted, 0, within)
        if at >= 0:
            return _value_at(region, at + len(quoted))
    if anywhere:  # neither near an end (no answer seen puts it there): join the body, once
        whole = bytes(ends.body)
        at = whole.rfind(quoted)
        if at >= 0:
            return _value_at(whole, at + len(quoted))
    return None


def _value_at(region: bytes, start: int) -> Any:
    """The object or string that follows a key ending at `start`, read within `_VALUE_MAX` bytes."""
    while start < len(region) and region[start] in b" \t\r\n:":
        start += 1
    if region[start : start + 1] == b'"':
        end = region.find(b'"', start + 1, start + _VALUE_MAX)
        return region[start + 1 : end].decode() if end > 0 else None
    if region[start : start + 1] != b"{":
        return None
    limit, depth, at = min(len(region), start + _VALUE_MAX), 0, start
    while (close := region.find(b"}", at, limit)) >= 0:  # from brace to brace, not byte by byte
        depth += region.count(b"{", at, close) - 1
        if depth == 0:
            try:
                return orjson.loads(region[start : close + 1])
            except orjson.JSONDecodeError:
                return None
        at = close + 1
    return None


def _count_values(body: AnswerBody, key: bytes) -> int:
    """How many `"key": "…"` a body holds, jumping over each (base64) value with a
    one-byte search for its closing quote: far cheaper than scanning for the key.
    Chunk by chunk: a key cut by a chunk's end is found from the bytes carried over."""
    needle = b'"' + key + b'"'
    keep = len(needle) - 1  # the most of a key one chunk can end with
    count, quotes, carry = 0, 0, b""  # quotes: those of the last key's value still to pass
    for chunk in body.chunks:
        at = 0
        if carry:  # a key that starts in the carried bytes ends in this chunk's first ones
            joined = carry + chunk[:keep]
            found = joined.find(needle)
            if found >= 0:
                count, quotes, at = count + 1, 2, found + len(needle) - len(carry)
            elif len(chunk) < keep:  # too short to hold a key of its own
                carry = joined[-keep:]
                continue
            carry = b""
        while True:
            if quotes:
                at = chunk.find(b'"', at)
                if at < 0:
                    break
                at, quotes = at + 1, quotes - 1
            else:
                found = chunk.find(needle, at)
                if found < 0:
                    carry = chunk[max(at, len(chunk) - keep) :]
                    break
                count, quotes, at = count + 1, 2, found + len(needle)
    return count


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
