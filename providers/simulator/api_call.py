"""One parsed API request, as every endpoint handler receives it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .images import ImageCache
from .replies import Reply


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart body."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class ApiCall:
    endpoint: str  # "chat/completions", "images/edits", …
    upstream: str  # the path prefix naming the provider the proxy thinks it reached
    request_id: str
    model: str | None  # the body's model, or else the Azure deployment name
    fields: dict[str, Any]  # the JSON body, or a multipart body's text fields
    uploads: list[Upload] = field(default_factory=list)

    def uploads_named(self, *names: str) -> list[Upload]:
        return [upload for upload in self.uploads if upload.field in names]


Handler = Callable[[ApiCall, ImageCache], Awaitable[Reply]]
