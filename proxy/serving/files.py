"""Generated images kept on disk (`files:` in the config), for the launch log and
for review. Extracting and writing megabytes happens on a worker thread after the
client has its answer; the row then gains the files' URLs."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from providers.types import Surface

from ..config.schema import FileSettings

FILE_NAME = re.compile(r"^(req_[0-9a-f]+)-(\d+)\.(png|jpeg|webp)$")


def makes_files(surface: Surface) -> bool:
    return surface.makes_images or surface is Surface.RESPONSES


class FileStore:
    def __init__(self, settings: FileSettings) -> None:
        self.directory = Path(settings.dir).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._url_base = settings.url_base.rstrip("/") if settings.url_base else None

    def store(self, request_id: str, surface: Surface, payloads: list[bytes]) -> list[str]:
        """Write every image in `payloads` (a JSON body, or a stream's events); their URLs.
        Blocking: run it on a worker thread."""
        urls = []
        for index, (image, extension) in enumerate(_images(surface, payloads)):
            name = f"{request_id}-{index}.{extension}"
            (self.directory / name).write_bytes(image)
            urls.append(f"{self._url_base}/files/{name}" if self._url_base else (self.directory / name).as_uri())
        return urls

    def path_of(self, name: str) -> Path | None:
        """The file for a name from a URL; None for anything that is not one of ours."""
        if not FILE_NAME.match(name):
            return None
        path = self.directory / name
        return path if path.is_file() else None


def _images(surface: Surface, payloads: list[bytes]) -> Iterator[tuple[bytes, str]]:
    for payload in payloads:
        document = _json(payload)
        if document is None:
            continue
        if surface.makes_images:
            extension = _extension(document.get("output_format"))
            if isinstance(document.get("b64_json"), str):  # a stream's completed event
                yield from _decoded(document["b64_json"], extension)
            for item in document.get("data") or ():
                if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
                    yield from _decoded(item["b64_json"], extension)
        elif surface is Surface.RESPONSES:
            response = document.get("response") if isinstance(document.get("response"), dict) else document
            for item in response.get("output") or ():
                if isinstance(item, dict) and item.get("type") == "image_generation_call" and item.get("result"):
                    yield from _decoded(item["result"], _extension(item.get("output_format")))


def _json(payload: bytes) -> dict[str, Any] | None:
    if payload.startswith((b"event:", b"data:")):
        payload = payload[payload.find(b"data:") + 5 :]
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _decoded(data: str, extension: str) -> Iterator[tuple[bytes, str]]:
    try:
        yield base64.b64decode(data, validate=True), extension
    except (binascii.Error, ValueError):
        return


def _extension(output_format: Any) -> str:
    return output_format if output_format in ("png", "jpeg", "webp") else "png"
