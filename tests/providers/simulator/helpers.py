"""What the simulator's tests share: the credentials they send, and readers of its answers."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
from PIL import Image

AUTH = {"Authorization": "Bearer sk-test"}


def decode(b64: str) -> Image.Image:
    picture = Image.open(io.BytesIO(base64.b64decode(b64)))
    picture.load()
    return picture


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each frame."""
    events = []
    for frame in body.decode().split("\n\n"):
        if not frame:
            continue
        name, data = None, ""
        for line in frame.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = value
        events.append((name, data))
    return events


def chat(text: str) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": [{"role": "user", "content": text}]}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]
