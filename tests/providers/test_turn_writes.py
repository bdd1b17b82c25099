"""Writes held to the end of the loop's turn (providers/turn_writes.py), on real sockets:
made there in the order held, before anything scheduled after the first of them, and
followed by the work that waits for them."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from providers.turn_writes import release_held, this_turn


async def _connected_pair() -> tuple[asyncio.Transport, socket.socket]:
    """A transport on the loop, and the plain socket at its other end."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=ours)
    return transport, theirs


def _received(peer: socket.socket) -> bytes:
    try:
        return peer.recv(65536)
    except BlockingIOError:
        return b""


async def test_writes_are_made_at_the_turns_end_in_order_then_the_work_after_them():
    loop = asyncio.get_running_loop()
    first, first_peer = await _connected_pair()
    second, second_peer = await _connected_pair()
    seen: list[str] = []

    this_turn(loop).write(first, b"one ")
    loop.call_soon(lambda: seen.append(f"scheduled after: {_received(first_peer)!r}"))
    this_turn(loop).then(lambda: seen.append(f"after the writes: {_received(second_peer)!r}"))
    this_turn(loop).write(second, b"two")
    this_turn(loop).write(first, b"three")
    assert _received(first_peer) == b"" and _received(second_peer) == b""  # held, not written

    await asyncio.sleep(0)  # the turn ends
    await asyncio.sleep(0)
    assert seen == ["after the writes: b'two'", "scheduled after: b'one three'"]
    first.close()
    second.close()


def test_a_closed_transport_is_skipped_and_a_failing_write_or_work_stops_nothing():
    """On uvloop, as Tollgate serves: there a write to a closed transport raises."""

    async def turn_with_a_closed_transport() -> tuple[bytes, list[str], list[str]]:
        loop = asyncio.get_running_loop()
        closed, _ = await _connected_pair()
        closed.close()  # its client hung up in an earlier turn
        await asyncio.sleep(0.01)
        open_one, peer = await _connected_pair()
        ended, _ = await _connected_pair()
        ended.write_eof()  # open, yet refuses writes: they raise
        reported: list[str] = []
        loop.set_exception_handler(lambda _, context: reported.append(str(context["exception"])))
        done: list[str] = []

        turn = this_turn(loop)
        turn.write(closed, b"never")
        turn.write(ended, b"refused")
        turn.write(open_one, b"sent")
        turn.then(lambda: 1 / 0)
        turn.then(lambda: done.append("ran"))
        await asyncio.sleep(0)
        assert this_turn(loop) is not turn  # the next turn holds its own
        await asyncio.sleep(0)
        open_one.close()
        ended.close()
        return _received(peer), done, reported

    sent, done, reported = uvloop.run(turn_with_a_closed_transport())
    assert sent == b"sent" and done == ["ran"]
    assert reported == ["Cannot call write() after write_eof()", "division by zero"]


async def test_what_a_transport_holds_is_written_when_it_is_released():
    """Before a connection closes (release_held): its own writes at once; the others' at the turn's end."""
    loop = asyncio.get_running_loop()
    closing, closing_peer = await _connected_pair()
    other, other_peer = await _connected_pair()
    this_turn(loop).write(closing, b"answer")
    this_turn(loop).write(other, b"kept")
    release_held(loop, closing)
    closing.close()
    assert _received(closing_peer) == b"answer" and _received(other_peer) == b""  # the other still held
    await asyncio.sleep(0)
    assert _received(other_peer) == b"kept"
    other.close()
