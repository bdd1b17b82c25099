"""The Starlette response that carries a relayed stream (serving/streaming.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Send


class RelayResponse(StreamingResponse):
    """The response that carries a relay. Starlette stops reading a stream whose client
    hung up, but a relay left waiting at its `yield` would be closed only by the garbage
    collector, its upstream generating meanwhile: this closes it as soon as sending ends."""

    def __init__(self, relay: AsyncGenerator[bytes], **options: Any) -> None:
        super().__init__(relay, **options)
        self._relay = relay

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._relay.aclose()
