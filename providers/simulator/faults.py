"""What each injected fault does, and the counters that make `times=N` exact."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from starlette.types import Receive

from .errors import SimError
from .markers import Marker
from .replies import BodyReply, Reply, StreamReply, disconnected

# Faults answered with an error instead of the normal answer.
ERROR_FAULTS: Final = frozenset({"rate_limit", "server_error", "unavailable", "moderation", "invalid_size"})
# An event whose data is a JSON object cut short.
_MALFORMED_EVENT: Final = b'data: {"id": "sim-malformed", "obj\n\n'


class FaultBook:
    """Counts how often each marker has applied, per (marker text, upstream name).

    Per upstream, so `[sim fault=server_error times=1]` fails once at each
    provider the proxy tries, the way a flaky upstream would.
    """

    def __init__(self) -> None:
        self._applied: dict[tuple[str, str], int] = {}

    def select(self, markers: Sequence[Marker], upstream: str) -> Marker | None:
        """The first marker that targets `upstream` and has applications left; counts it."""
        for marker in markers:
            if marker.upstream is not None and marker.upstream != upstream:
                continue
            if marker.times is None:
                return marker  # no limit, nothing to count (benchmarks send unbounded marker variety)
            key = (marker.text, upstream)
            applied = self._applied.get(key, 0)
            if applied < marker.times:
                self._applied[key] = applied + 1
                return marker
        return None

    def reset(self) -> None:
        self._applied.clear()


async def hold(seconds: float, receive: Receive) -> bool:
    """Wait `seconds`, or less if the client hangs up. True if the client is still there.

    Watching for the disconnect frees the task as soon as the proxy's own timeout
    gives up, instead of holding it for the full (default 60 s) `timeout` fault.
    """
    disconnect = asyncio.ensure_future(disconnected(receive))
    try:
        done, _ = await asyncio.wait({disconnect}, timeout=seconds)
    finally:
        disconnect.cancel()
    return not done


def fault_error(marker: Marker, request_id: str, size: str | None) -> SimError:
    """The error an error fault answers with, shaped like OpenAI's."""
    match marker.fault:
        case "rate_limit":
            seconds = marker.retry_after
            return SimError(
                429,
                f"Rate limit reached for requests (simulated). Please try again in {seconds:g}s.",
                type="requests",
                code="rate_limit_exceeded",
                headers={
                    "retry-after": f"{seconds:g}",
                    "retry-after-ms": str(round(seconds * 1000)),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{seconds:g}s",
                },
            )
        case "server_error":
            return SimError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
                code="server_error",
            )
        case "unavailable":
            return SimError(
                503, "The server is overloaded or not ready yet.", type="server_error", code="service_unavailable"
            )
        case "moderation":
            return SimError(
                400,
                "Your request was rejected by the safety system. If you believe this is an error, contact us "
                f"at help.openai.com and include the request ID {request_id}. safety_violations=[violence].",
                type="image_generation_user_error",
                code="moderation_blocked",
                details={"moderation_details": {"moderation_stage": "input", "categories": ["violence"]}},
            )
        case "invalid_size":
            bad_size = size if size and size != "auto" else "1000x1000"
            return SimError(
                400,
                f"Invalid size '{bad_size}'. Width and height must both be divisible by 16.",
                type="image_generation_user_error",
                param="size",
                code="invalid_value",
            )
    raise ValueError(f"not an error fault: {marker.fault!r}")


def apply_output_fault(marker: Marker, reply: Reply) -> Reply:
    """Damage a normal answer as `cut_stream` / `malformed` ask; apply `interval`."""
    if isinstance(reply, StreamReply):
        frames = list(reply.frames)
        half = frames[: len(frames) // 2]
        if marker.fault == "cut_stream":
            return StreamReply(half, interval=marker.interval, cut=True)
        if marker.fault == "malformed":
            return StreamReply([*half, _MALFORMED_EVENT], interval=marker.interval)
        return StreamReply(frames, interval=marker.interval, cut=reply.cut)
    if isinstance(reply, BodyReply) and reply.status == 200:
        half_body = reply.body[: len(reply.body) // 2]
        if marker.fault == "cut_stream":
            return BodyReply(200, half_body, reply.content_type, reply.headers, declared_length=len(reply.body))
        if marker.fault == "malformed":
            # A JSON object cut short is never valid JSON.
            return BodyReply(200, half_body, reply.content_type, reply.headers)
    return reply
