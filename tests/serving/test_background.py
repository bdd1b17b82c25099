"""Work beside requests: what `start` runs at once and what it leaves to a task, which
shutdown waits for or cancels like any spawned one."""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxy.serving.background import Background


async def test_work_that_never_waits_is_done_before_start_returns_and_costs_no_task():
    background, done = Background(), []

    async def settle() -> None:
        done.append("settled")

    background.start(settle())
    assert done == ["settled"] and background._tasks == set()


async def test_work_that_waits_goes_on_as_a_task_that_shutdown_waits_for():
    background, steps = Background(), []
    answer = asyncio.get_running_loop().create_future()

    async def settle() -> str:
        steps.append("began")
        steps.append(await answer)
        await asyncio.sleep(0)  # a bare yield as well as a future
        steps.append("ended")
        return "ok"

    background.start(settle())
    assert steps == ["began"] and len(background._tasks) == 1
    answer.set_result("answered")
    await background.wait()
    assert steps == ["began", "answered", "ended"] and background._tasks == set()


async def test_cancelling_reaches_the_work_where_it_waits():
    background, seen = Background(), []

    async def settle() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    background.start(settle())
    await asyncio.sleep(0)
    await background.cancel()
    assert seen == ["cancelled"]


@pytest.mark.parametrize("waits", [False, True])
async def test_a_failure_is_logged_not_raised_to_the_caller(caplog, waits):
    background = Background()

    async def settle() -> None:
        if waits:
            await asyncio.sleep(0)
        raise RuntimeError("counter store broke")

    with caplog.at_level(logging.ERROR, logger="tollgate"):
        background.start(settle())
        await background.wait()
    assert [record.message for record in caplog.records] == ["background work failed"]
    assert "counter store broke" in caplog.text
