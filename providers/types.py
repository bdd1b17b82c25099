"""The shapes shared by the proxy and the providers: what a client asked for (`Call`)
and the body that carries it. Imports nothing of ours, so both sides can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import orjson

from .values import value


class Surface(StrEnum):
    """The OpenAI API a request speaks; the ledger's `surface`."""

    IMAGES_GENERATE = "images.generate"
    IMAGES_EDIT = "images.edit"
    RESPONSES = "responses"
    CHAT = "chat.completions"
    EMBEDDINGS = "embeddings"

    @property
    def path(self) -> str:
        """The path below `/v1` that serves this surface."""
        return _PATHS[self]

    @property
    def makes_images(self) -> bool:
        return self in (Surface.IMAGES_GENERATE, Surface.IMAGES_EDIT)


_PATHS = {
    Surface.IMAGES_GENERATE: "images/generations",
    Surface.IMAGES_EDIT: "images/edits",
    Surface.RESPONSES: "responses",
    Surface.CHAT: "chat/completions",
    Surface.EMBEDDINGS: "embeddings",
}


@value
class UploadedFile:
    """One file part of a multipart edit; its bytes stay where they are in the body."""

    field: str  # "image", "image[]" or "mask"
    filename: str | None
    content_type: str | None
    start: int  # offsets of the file's bytes in the body
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@value
class JsonBody:
    """A JSON request body: the client's bytes, and the object they parse to."""

    raw: bytes
    fields: dict[str, Any]
    content_type: ClassVar[str] = "application/json"

    def for_model(self, model: str) -> bytes:
        """The body to send when the upstream knows the model by another name."""
        if self.fields.get("model") == model:
            return self.raw
        return orjson.dumps({**self.fields, "model": model})


@value
class MultipartBody:
    """A multipart/form-data body, kept byte for byte: images are never re-encoded."""

    raw: bytes
    content_type: str  # with its boundary
    fields: dict[str, str]
    files: tuple[UploadedFile, ...]
    model_span: tuple[int, int] | None  # where the `model` field's value sits in `raw`

    def for_model(self, model: str) -> bytes:
        if self.model_span is None or self.fields.get("model") == model:
            return self.raw
        start, end = self.model_span
        return self.raw[:start] + model.encode() + self.raw[end:]

    def file_bytes(self, file: UploadedFile) -> bytes:
        return self.raw[file.start : file.end]


RequestBody = JsonBody | MultipartBody


@value
class ImageSettings:
    """What a request asks of the image model, as the client said it (None: not said).

    From the Images API fields, or from the Responses `image_generation` tool.
    """

    model: str | None = None
    size: str | None = None
    quality: str | None = None
    n: int = 1
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    partial_images: int = 0
    input_images: int = 0  # images to edit (files or references)
    inputs: tuple[UploadedFile, ...] = ()
    mask: UploadedFile | None = None


@dataclass(frozen=True, slots=True)
class StoredResource:
    """What a request asks of something an upstream keeps for the client (a stored
    Response): sent as it came to the provider that keeps it; nothing to price."""

    method: str  # GET, DELETE or POST
    path: str  # below /v1, e.g. "responses/resp_1/input_items"
    query: str = ""  # the client's query string, as it came


@value
class Call:
    """One client request, parsed once at the edge and read by everything after it."""

    request_id: str
    surface: Surface
    model: str  # as the client sent it: the route's name
    stream: bool
    body: RequestBody
    image: ImageSettings | None = None
    prompt_version: str | None = None
    timeout_s: float | None = None  # the client may shorten the route's timeout, never lengthen it
    continues: str | None = None  # Responses: the previous_response_id or conversation id it follows up
    resource: StoredResource | None = None  # a stored Response's GET, DELETE, input_items or cancel
    max_output_tokens: int | None = None  # the output limit the request sets (max_tokens and its kin)
