"""`tollgate ledger archive --before YYYY-MM`: every whole month before that one leaves
the ledger database for two gzip files in the archive directory, written, fsynced and
read back before anything is taken away:

- `ledger-YYYY-MM.focus.csv.gz`: its charges as FOCUS CSV, a line each (the export's
  columns, proxy/finance/focus/);
- `ledger-YYYY-MM.rows.jsonl.gz`: its rows as the journal holds them, every field and
  charge, including the rows nobody billed (no FOCUS line), one JSON object a line.

Then the month is detached (PostgreSQL) or deleted (SQLite): proxy/ledger/archive.py.
The rollup keeps its daily sums, so spend over whole days still counts it, while a
row of it is answered "archived" with the file that holds it (docs/ledger-at-scale.md).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from ..ledger import LedgerRow, SqlLedger, from_nano
from ..ledger.archive import ArchiveRefused, Month, measure, months_before, take_away
from ..ledger.partitions import check_month, this_month
from .focus import focus_chunks
from .reports import read_ledger


@dataclass(frozen=True, slots=True)
class Archived:
    month: Month
    files: list[Path]


def archive_before(
    url: str,
    before: str,
    directory: Path,
    *,
    keep_tables: bool = False,
    wait_s: float | None = 5,
    say: Callable[[str], None] = print,
) -> list[Archived]:
    """Archive every month before `before` that holds rows, oldest first; each month is
    taken away only once its files are written and read back whole."""
    before = check_month(before)
    if before > this_month():
        raise ArchiveRefused(
            f"--before {before} would archive {this_month()}, which is still being written: "
            f"give --before {this_month()} or earlier (the months before it are archived)."
        )
    directory.mkdir(parents=True, exist_ok=True)

    def archive(sql: SqlLedger, connection: Any) -> list[Archived]:
        done = []
        for month in months_before(sql, connection, before):
            exported = measure(sql, connection, month)
            files = _export(sql, connection, exported, directory)
            take_away(sql, connection, exported, [path.name for path in files], keep=keep_tables)
            connection.commit()
            cost = from_nano(exported.cost_nanousd) or Decimal(0)
            say(f"{month}: {exported.rows} rows, {exported.charges} charges, {cost:f} USD -> {files[0].name}")
            done.append(Archived(exported, files))
        return done

    return read_ledger(url, archive, wait_s=wait_s)


def _export(sql: SqlLedger, connection: Any, month: Month, directory: Path) -> list[Path]:
    """The month's two files, fsynced, each checked against what the month holds."""
    focus_path = directory / f"ledger-{month.month}.focus.csv.gz"
    rows_path = directory / f"ledger-{month.month}.rows.jsonl.gz"
    written = [0]
    with _durable(focus_path) as focus_file, _durable(rows_path) as rows_file:

        def kept(rows: Iterator[LedgerRow]) -> Iterator[LedgerRow]:
            for row in rows:
                rows_file.write(orjson.dumps(row.record(), option=orjson.OPT_APPEND_NEWLINE))
                written[0] += 1
                yield row

        for piece in focus_chunks(kept(sql.each(connection, month.period))):
            focus_file.write(piece.encode())
    lines, billed = read_focus_totals(focus_path)
    if (written[0], lines, billed) != (month.rows, month.charges, from_nano(month.cost_nanousd) or Decimal(0)):
        raise ArchiveRefused(
            f"{month.month}: the files hold {written[0]} rows and {lines} charges ({billed} USD) but the ledger "
            f"{month.rows} rows and {month.charges} charges: it changed while exporting. Nothing was taken away; "
            "archive again."
        )
    return [focus_path, rows_path]


def read_focus_totals(path: Path) -> tuple[int, Decimal]:
    """An archived month's FOCUS file read back: its lines and the sum of their BilledCost."""
    lines, billed = 0, Decimal(0)
    with gzip.open(path, "rt", newline="") as text:
        for line in csv.DictReader(text):
            lines += 1
            billed += Decimal(line["BilledCost"])
    return lines, billed


class _durable:
    """A gzip file written under a temporary name, fsynced, then renamed into place and its
    directory fsynced: after `with`, the file is whole on disk, or not there at all."""

    def __init__(self, path: Path) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")

    def __enter__(self) -> io.BufferedWriter:
        self._raw = self.partial.open("wb")
        self._file = gzip.GzipFile(fileobj=self._raw, mode="wb", filename=self.path.name[:-3])
        return self._file  # type: ignore[return-value]

    def __exit__(self, kind: Any, *_: Any) -> None:
        self._file.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        if kind is not None:
            self.partial.unlink(missing_ok=True)
            return
        self.partial.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
