"""The provider interface: one `send`, the way httpx transports have one
`handle_async_request`. Retries, fallbacks, pricing and recording live outside.
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from .answer_body import EMPTY, AnswerBody
from .types import Call


@dataclass(slots=True)
class UpstreamReply:
    """What the upstream answered: a complete body (as the chunks it arrived in), or a
    stream of SSE bytes for a successful streamed call. Whoever holds a streamed reply
    must `aclose` it."""

    status: int
    headers: Mapping[str, str]
    body: AnswerBody = EMPTY
    stream: AsyncIterator[bytes] | None = None
    closer: Callable[[], Awaitable[None]] | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json")

    def retry_after_s(self) -> float | None:
        """The wait the upstream asked for: `retry-after-ms`, else `retry-after` (seconds or a date)."""
        if (ms := self.headers.get("retry-after-ms")) is not None:
            try:
                return max(float(ms) / 1000, 0.0)
            except ValueError:
                pass
        value = self.headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - time.time(), 0.0)

    async def aclose(self) -> None:
        if self.closer is not None:
            closer, self.closer = self.closer, None
            await closer()


class Provider(ABC):
    """Turns a `Call` into bytes for one upstream and its answer back into an `UpstreamReply`."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        """Send `call` upstream as `model`.

        Returns the upstream's reply whatever its HTTP status. Raises an
        `UpstreamFailure` when no usable reply came: a timeout, a broken
        connection, a body that is not what the API promises.
        """

    async def aclose(self) -> None:
        """Release pooled connections; called once at shutdown or when a reload drops the provider."""
