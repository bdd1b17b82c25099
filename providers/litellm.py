"""Every vendor LiteLLM speaks (Anthropic, Bedrock, Vertex, …), for the long tail.

The client's OpenAI-shaped fields become LiteLLM's keyword arguments; its
OpenAI-shaped answer comes back as JSON bytes (or SSE events). LiteLLM is heavy,
so this module is imported only when a provider of kind `litellm` is configured,
and LiteLLM's own retries are off: retrying is the router's job.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Mapping
from functools import partial
from typing import Any

import orjson

from .answer_body import AnswerBody
from .base import Provider, UpstreamReply
from .errors import UnsupportedByProvider, UpstreamConnectError, UpstreamTimeout
from .types import Call, MultipartBody, Surface, UploadedFile

# LiteLLM fetches its price map over the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream"}


class LiteLLMProvider(Provider):
    def __init__(
        self, name: str, *, api_key: str | None, base_url: str | None, params: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(name)
        self._secret = api_key
        credentials = {"api_key": api_key, "api_base": base_url}
        self._fixed = {**(params or {}), **{k: v for k, v in credentials.items() if v}, "num_retries": 0}

    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        if call.resource is not None:
            raise UnsupportedByProvider(
                f"Provider '{self.name}' (kind litellm) cannot serve {call.resource.method} /v1/{call.resource.path}: "
                "stored responses are served only where an OpenAI-API provider (openai, azure, openai_compatible) "
                "made them."
            )
        arguments = {key: value for key, value in call.body.fields.items() if key != "model"}
        arguments |= {**self._fixed, "model": model, "timeout": timeout_s}
        try:
            async with asyncio.timeout(timeout_s):
                result = await self._invoke(call, arguments)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"provider '{self.name}' did not answer within {timeout_s:g}s") from exc
        except litellm.Timeout as exc:
            raise UpstreamTimeout(f"provider '{self.name}' timed out: {self._scrub(exc)}") from exc
        except litellm.APIConnectionError as exc:
            raise UpstreamConnectError(f"provider '{self.name}' could not be reached: {self._scrub(exc)}") from exc
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if not isinstance(status, int):
                raise
            return UpstreamReply(status, _JSON, body=AnswerBody.of(self._error_body(exc)))
        if call.stream:
            events = self._events(result, call.surface)
            return UpstreamReply(200, _SSE, stream=events, closer=partial(_close_stream, events, result))
        return UpstreamReply(200, _JSON, body=AnswerBody.of(result.model_dump_json().encode()))

    async def _invoke(self, call: Call, arguments: dict[str, Any]) -> Any:
        match call.surface:
            case Surface.CHAT:
                return await litellm.acompletion(**arguments)
            case Surface.RESPONSES:
                return await litellm.aresponses(**arguments)
            case Surface.EMBEDDINGS:
                return await litellm.aembedding(**arguments)
            case Surface.IMAGES_GENERATE:
                return await litellm.aimage_generation(**arguments)
            case Surface.IMAGES_EDIT:
                if isinstance(call.body, MultipartBody):
                    arguments |= _edit_files(call.body)
                return await litellm.aimage_edit(**arguments)

    async def _events(self, stream: Any, surface: Surface) -> AsyncGenerator[bytes]:
        try:
            async for event in stream:
                data = event.model_dump_json(exclude_none=True).encode()
                if surface is Surface.CHAT:
                    yield b"data: " + data + b"\n\n"
                else:
                    # LiteLLM's event types are a str Enum, whose str() is its member's name
                    kind = getattr(event.type, "value", event.type)
                    yield b"event: " + str(kind).encode() + b"\ndata: " + data + b"\n\n"
        except Exception as exc:
            raise UpstreamConnectError(f"provider '{self.name}' broke off the stream: {self._scrub(exc)}") from exc
        if surface is Surface.CHAT:
            yield b"data: [DONE]\n\n"

    def _error_body(self, exc: Exception) -> bytes:
        error = {
            "message": self._scrub(exc),
            "type": getattr(exc, "type", None) or "invalid_request_error",
            "param": getattr(exc, "param", None),
            "code": getattr(exc, "code", None),
        }
        return orjson.dumps({"error": error}, default=str)

    def _scrub(self, exc: Exception) -> str:
        """The vendor's message, without our key should a vendor echo it."""
        message = str(getattr(exc, "message", None) or exc)
        return message.replace(self._secret, "***") if self._secret else message


async def _close_stream(events: AsyncGenerator[bytes], stream: Any) -> None:
    """Closing our events leaves LiteLLM's stream, and its upstream connection, open:
    a client that left would have the vendor go on generating, and billing, to the end."""
    await events.aclose()
    if (close := getattr(stream, "aclose", None)) is not None:
        await close()


def _edit_files(body: MultipartBody) -> dict[str, Any]:
    """The edit's files as LiteLLM takes them: (filename, bytes, content type) tuples."""

    def as_tuple(file: UploadedFile) -> tuple[str, bytes, str]:
        return file.filename or "image.png", body.file_bytes(file), file.content_type or "image/png"

    files: dict[str, Any] = {"image": [as_tuple(file) for file in body.files if file.field != "mask"]}
    if mask := next((file for file in body.files if file.field == "mask"), None):
        files["mask"] = as_tuple(mask)
    return files
