"""The recent requests the simulator received, so tests can check what reached
the upstream: which credentials, which model, which multipart parts."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from .api_call import Upload

Entry = dict[str, Any]


class RequestLog:
    """A bounded log; the oldest entries fall off once `limit` is reached."""

    def __init__(self, limit: int = 1000) -> None:
        self._entries: deque[Entry] = deque(maxlen=limit)

    def record(
        self,
        *,
        request_id: str,
        method: str,
        path: str,
        query: str,
        upstream: str,
        raw_headers: Iterable[tuple[bytes, bytes]],
        body_size: int,
    ) -> Entry:
        """Log a request as it arrives; the app fills in model, files and outcome later."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in raw_headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        entry: Entry = {
            "request_id": request_id,
            "time": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "upstream": upstream,
            "endpoint": None,
            "model": None,
            "headers": headers,
            "content_type": headers.get("content-type"),
            "body_size": body_size,
            "multipart": None,
            "fields": None,  # the JSON body, or a multipart body's text fields (see app.LOGGED_BODY_LIMIT)
            "markers": [],  # fault markers found in the request, as written
            "marker": None,  # the one that applied, in canonical form
            "fault": None,
            "status": None,
            "stream": None,  # a stream's frames, how many were sent, and when its client left (if it did)
        }
        self._entries.append(entry)
        return entry

    def entries(self, upstream: str | None = None) -> list[Entry]:
        return [entry for entry in self._entries if upstream is None or entry["upstream"] == upstream]

    def clear(self) -> None:
        self._entries.clear()


def multipart_summary(field_names: list[str], uploads: list[Upload]) -> dict[str, Any]:
    """Field names in order (files included) and each file's name, type and size."""
    return {
        "fields": field_names,
        "files": [
            {
                "field": upload.field,
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": len(upload.data),
            }
            for upload in uploads
        ],
    }
