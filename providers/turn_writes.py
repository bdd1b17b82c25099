"""Socket writes held to the end of the event loop's turn and made there together, then
the work that waits for them.

Why: a write that wakes a sleeping peer costs the writer an interrupt to the peer's
CPU, and on a virtual machine that costs more than the write. Written as each request
comes to it, a request to the upstream or an answer to the client wakes its peer
every time: at chat c=64 here, two wake-ups and two interrupts per request, and the
upstream (nginx) spent twice its CPU per request. Written together at the end of the
turn, one wake-up serves every request the turn handled (0.15 interrupts per request;
bench/README.md).

Order is kept. The turn's writes are made by one callback, scheduled when the first is
held, so before any callback scheduled after it (the loop runs them in order): a
connection's next request or next answer, which needs a later callback, cannot
overtake a held one. Only whole messages are held, for connections that stay open; a
caller that closes a transport after writing writes at once.

The callback runs in the loop's next pass, after it has polled for I/O once more, and
what that poll delivers may close a connection (a malformed request after a good one,
a timeout, a shutdown). Whatever closes a connection whose writes may be held calls
`release_held` first, so they are written before it closes (the client connections'
transport, proxy/http/connections.py). A transport closed by its peer meanwhile is
skipped: there is no one left to write to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class TurnWrites:
    """The writes held on one event loop in this turn, and what runs after them."""

    __slots__ = ("_after", "_loop", "_writes")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._writes: list[tuple[asyncio.WriteTransport, bytes]] = []
        self._after: list[Callable[[], None]] = []

    def write(self, transport: asyncio.WriteTransport, data: bytes) -> None:
        self._writes.append((transport, data))

    def release(self, transport: asyncio.WriteTransport) -> None:
        """Write now what is held for `transport`, which is about to close."""
        kept = []
        for held, data in self._writes:
            if held is transport:
                transport.write(data)
            else:
                kept.append((held, data))
        self._writes = kept

    def then(self, work: Callable[[], None]) -> None:
        """Run `work` once this turn's writes are made (the answers it follows are on their way)."""
        self._after.append(work)

    def _run(self) -> None:
        del _turns[self._loop]
        # One connection's failure is reported as the loop would report a callback's, and
        # the rest go on: the turn carries every connection's writes.
        for transport, data in self._writes:
            if not transport.is_closing():
                try:
                    transport.write(data)
                except Exception as exc:
                    self._loop.call_exception_handler({"message": "a turn's held write failed", "exception": exc})
        for work in self._after:
            try:
                work()
            except Exception as exc:
                self._loop.call_exception_handler({"message": "work after a turn's writes failed", "exception": exc})


_turns: dict[asyncio.AbstractEventLoop, TurnWrites] = {}


def release_held(loop: asyncio.AbstractEventLoop, transport: asyncio.WriteTransport) -> None:
    """Write now whatever the current turn holds for `transport`: call it before closing one."""
    if (turn := _turns.get(loop)) is not None:
        turn.release(transport)


def this_turn(loop: asyncio.AbstractEventLoop) -> TurnWrites:
    """The writes held on `loop` in its current turn: made, and their work run, at its end."""
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = TurnWrites(loop)
        loop.call_soon(turn._run)
    return turn
