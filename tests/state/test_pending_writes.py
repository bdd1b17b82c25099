"""Writes the state store could not take wait in the process and are retried with
backoff until they land; the queue is bounded, and a write that fails for any
reason but an outage is dropped rather than retried forever. (The Redis store's
own use of it, over a real outage, is in tests/state/test_state.py.)"""

from __future__ import annotations

import asyncio
import logging

from policies.counters import StateUnavailable
from proxy.state.pending import PendingWrites


class Store:
    """A store that is down until told otherwise, and records what it took."""

    def __init__(self) -> None:
        self.up = False
        self.taken: list[str] = []

    def write(self, name: str):
        async def write() -> None:
            if not self.up:
                raise StateUnavailable("ConnectionError")
            self.taken.append(name)

        return write


async def until_empty(pending: PendingWrites, timeout_s: float = 3) -> None:
    async with asyncio.timeout(timeout_s):
        while len(pending):
            await asyncio.sleep(0.01)


async def test_writes_wait_for_the_store_and_land_once_each():
    store, pending = Store(), PendingWrites(first_wait_s=0.01, max_wait_s=0.05)
    for name in ("a", "b", "c"):
        await pending.run(store.write(name))
    await asyncio.sleep(0.2)  # several retries while the store is down
    assert (len(pending), store.taken) == (3, [])
    store.up = True
    await until_empty(pending)
    assert store.taken == ["a", "b", "c"]
    await pending.run(store.write("d"))  # the store is up: written at once
    assert store.taken[-1] == "d" and len(pending) == 0


async def test_past_its_limit_the_oldest_write_is_dropped(caplog):
    store, pending = Store(), PendingWrites(limit=2, first_wait_s=0.01, max_wait_s=0.05)
    with caplog.at_level(logging.ERROR, logger="tollgate"):
        for name in ("a", "b", "c"):
            await pending.run(store.write(name))
    assert "the oldest is dropped" in caplog.text
    store.up = True
    await until_empty(pending)
    assert store.taken == ["b", "c"]


async def test_a_write_that_fails_for_another_reason_is_dropped_not_retried(caplog):
    store, pending = Store(), PendingWrites(first_wait_s=0.01, max_wait_s=0.05)
    broken_calls = 0

    async def broken() -> None:
        nonlocal broken_calls
        broken_calls += 1
        if broken_calls == 1:
            raise StateUnavailable("ConnectionError")
        raise ValueError("a script error")

    await pending.run(broken)
    await pending.run(store.write("a"))
    store.up = True
    with caplog.at_level(logging.ERROR, logger="tollgate"):
        await until_empty(pending)
    assert broken_calls == 2 and store.taken == ["a"]
    assert "failed and is dropped" in caplog.text


async def test_shutdown_tries_once_more_and_says_what_never_landed(caplog):
    store, pending = Store(), PendingWrites(first_wait_s=10)
    await pending.run(store.write("a"))
    store.up = True
    await pending.aclose()  # the retry was not due for ten seconds
    assert store.taken == ["a"]

    down, pending = Store(), PendingWrites(first_wait_s=10)
    await pending.run(down.write("b"))
    with caplog.at_level(logging.ERROR, logger="tollgate"):
        await pending.aclose(timeout_s=0.5)
    assert "never took" in caplog.text and down.taken == []
