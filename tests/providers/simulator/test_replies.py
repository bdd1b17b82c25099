"""Sending a reply over ASGI (providers/simulator/replies.py): a body cut short stays
unfinished, and a paced stream stops the moment its client hangs up. Streams cut
mid-body on a real socket are in tests/e2e/test_simulator_e2e.py."""

from __future__ import annotations

import asyncio
import time

from starlette.types import Message

from providers.simulator.replies import BodyReply, Delivery, StreamReply, transmit


async def test_transmit_leaves_a_cut_body_unfinished() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await transmit(send, StreamReply([b"data: 1\n\n"], cut=True), [])
    assert [message.get("more_body") for message in sent[1:]] == [True]
    sent.clear()
    await transmit(send, BodyReply(200, b"{}", declared_length=10), [])
    assert (b"content-length", b"10") in sent[0]["headers"]
    assert sent[1] == {"type": "http.response.body", "body": b"{}", "more_body": True}


async def test_a_paced_stream_stops_when_its_client_hangs_up() -> None:
    sent: list[Message] = []
    hang_up = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        if len(sent) == 3:  # the start and two frames: the client has read enough
            hang_up.set()

    async def receive() -> Message:
        await hang_up.wait()
        return {"type": "http.disconnect"}

    frames = [f"data: {index}\n\n".encode() for index in range(6)]
    before = time.time()
    delivery = await transmit(send, StreamReply(frames, interval=0.2), [], receive)
    assert delivery is not None and (delivery.events, delivery.sent) == (6, 2)
    assert delivery.client_closed_at is not None and 0 <= delivery.client_closed_at - before < 0.3
    assert [message.get("body") for message in sent[1:]] == frames[:2]  # and nothing after


async def test_a_stream_whose_client_stays_is_sent_whole() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    delivery = await transmit(send, StreamReply([b"data: 1\n\n", b"data: 2\n\n"], interval=0.01), [], receive)
    assert delivery == Delivery(events=2, sent=2)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
