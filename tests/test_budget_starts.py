"""Where a budget's counter starts: the owner's spend in the period, read from the
real ledger, one read shared by a burst of first requests, and zero (with a
warning) when the ledger cannot answer, so a request is never held up for long."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from proxy.config.schema import LedgerSettings
from proxy.ledger import Ledger, utc_now
from proxy.serving.budget_starts import BudgetStarts

from .rows import OPENAI, charged_row


async def test_every_owner_starts_from_its_spend_and_a_later_start_sees_what_was_spent_since(tmp_path):
    ledger = Ledger(LedgerSettings(url=f"sqlite:///{tmp_path}/ledger.db", journal_dir=str(tmp_path / "journal")))
    starts = BudgetStarts()
    starts.attach(ledger)
    today = dt.datetime.now(dt.UTC).date()
    try:
        ledger.write(charged_row("a1", utc_now(), [(OPENAI, 300)], key_id="web-app", team="growth"))
        ledger.write(charged_row("b1", utc_now(), [(OPENAI, 50)], key_id="batch", team="growth"))
        ledger.write(charged_row("old", "2020-01-01T00:00:00.000000Z", [(OPENAI, 9_000)], key_id="web-app"))
        assert ledger.writer.wait_until_applied(10)
        spent = await asyncio.gather(  # a burst of first requests: they share the reads that run
            *(starts.spent_since(scope, name, today) for scope, name in [("key", "web-app"), ("key", "batch")] * 5),
            starts.spent_since("team", "growth", today),
            starts.spent_since("key", "nobody", today),
        )
        assert spent == [300, 50] * 5 + [350, 0]

        ledger.write(charged_row("a2", utc_now(), [(OPENAI, 700)], key_id="web-app", team="growth"))
        assert ledger.writer.wait_until_applied(10)
        assert await starts.spent_since("key", "web-app", today) == 1_000  # a finished read is not reused
    finally:
        await ledger.close()


async def test_a_ledger_that_cannot_answer_starts_the_counter_from_zero(tmp_path, caplog):
    unreachable = LedgerSettings(
        url="postgresql://postgres@127.0.0.1:1/nowhere", journal_dir=str(tmp_path / "journal"), drain_timeout_s=1
    )
    ledger = Ledger(unreachable)
    starts = BudgetStarts(timeout_s=3)
    starts.attach(ledger)
    try:
        with caplog.at_level(logging.WARNING, logger="tollgate"):
            assert await starts.spent_since("team", "growth", dt.date(2026, 11, 1)) == 0
        assert "its counter starts from zero" in caplog.text
    finally:
        await ledger.close()


async def test_without_a_ledger_every_counter_starts_from_zero():
    assert await BudgetStarts().spent_since("key", "web-app", dt.date(2026, 11, 30)) == 0
