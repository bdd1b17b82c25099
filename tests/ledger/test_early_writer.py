"""`tollgate serve` starts the ledger writer's process first thing (writer.start_early),
so that its interpreter and modules load while the proxy loads its own; the ledger
opened later takes it, and sends it its settings. One that no ledger takes exits,
having done nothing; one that died meanwhile is replaced."""

from __future__ import annotations

import pytest

from proxy.config.schema import LedgerSettings
from proxy.ledger import Filters, Ledger
from proxy.ledger import writer as writer_module

from .test_ledger import finish, started


@pytest.fixture(autouse=True)
def no_early_process_left():
    yield
    writer_module.discard_early()


def _settings(tmp_path) -> LedgerSettings:
    return LedgerSettings(url=f"sqlite:///{tmp_path}/ledger.db", journal_dir=str(tmp_path / "journal"))


async def test_the_ledger_takes_the_early_process_and_its_rows_go_in(tmp_path):
    writer_module.start_early()
    early = writer_module._early
    assert early is not None
    ledger = Ledger(_settings(tmp_path))
    assert ledger.writer.pid == early.process.pid and writer_module._early is None
    await ledger.start()
    row = started("req_early")
    ledger.write(row)
    ledger.write(finish(row, 2_000_000))
    assert ledger.writer.wait_until_applied(10)
    (total,) = await ledger.spend([], Filters())
    assert (total.requests, total.cost_nanousd) == (1, 2_000_000)
    assert await ledger.close()


def test_an_early_process_no_ledger_takes_exits_having_done_nothing(tmp_path):
    writer_module.start_early()
    early = writer_module._early
    assert early is not None
    writer_module.discard_early()
    assert early.process.wait(10) == 0
    assert writer_module._early is None


async def test_an_early_process_that_died_is_replaced(tmp_path):
    writer_module.start_early()
    early = writer_module._early
    assert early is not None
    early.process.kill()
    early.process.wait(10)
    ledger = Ledger(_settings(tmp_path))
    assert ledger.writer.pid != early.process.pid
    await ledger.start()
    assert ledger.writer.wait_until_connected(10)
    assert await ledger.close()
