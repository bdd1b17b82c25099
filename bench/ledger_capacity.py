"""How many ledger rows per second one PostgreSQL takes from several writers at once, as
several replicas' writers write, and what a row costs the writers and PostgreSQL in CPU.

    .venv/bin/python bench/ledger_capacity.py [--writers 3] [--rows 20000]

Each writer is a `Ledger` as a replica has (its own journal and writer process) on one
database made for the run. This process journals `--rows` requests into each: first
every request's `started` snapshot, then every `finished` one (bench/ledger_writer.py's
realistic image row), so that each request is two upserts, as when a request outlasts
the writer's batch (the usual case: the writer applies what is journaled every 0.1 s).
The clock runs until every writer has applied its last byte. /proc gives the CPU time
of the writer processes and of the PostgreSQL backends serving the database (found in
pg_stat_activity), so the figures translate into cores. Prints a Markdown table and
writes it to bench/out/ledger_capacity.md, which results.md shows (bench/sections.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import record
import sections
from ledger_writer import realistic_row
from procfs import processes

from proxy.config.schema import LedgerSettings
from proxy.ledger import Ledger

OUT = Path(__file__).resolve().parent / "out"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def measure(url: str, database: str, writers: int, rows: int, scratch: Path) -> dict:
    ledgers = [
        Ledger(LedgerSettings(url=url, journal_dir=str(scratch / f"journal-{index}"), drain_timeout_s=120))
        for index in range(writers)
    ]
    for ledger in ledgers:
        assert ledger.writer.wait_until_connected(60), "a writer could not reach PostgreSQL"
    snapshots = [realistic_row(index) for index in range(rows)]
    before = _cpu(database, ledgers)
    began = time.perf_counter()

    def journal(offset: int, ledger: Ledger) -> None:
        for started, _ in snapshots:
            ledger.write(_renamed(started, offset))
        for _, finished in snapshots:
            ledger.write(_renamed(finished, offset))

    threads = [threading.Thread(target=journal, args=(index, ledger)) for index, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ledger in ledgers:
        assert ledger.writer.wait_until_applied(600), "a writer fell behind for ten minutes"
    elapsed = time.perf_counter() - began
    after = _cpu(database, ledgers)
    for ledger in ledgers:
        asyncio.run(ledger.close())
    with psycopg.connect(url) as connection:
        stored = connection.execute("SELECT count(*) FROM ledger WHERE status = 'ok'").fetchone()[0]
    assert stored == writers * rows, f"{stored} finished rows stored of {writers * rows}"
    total = writers * rows
    return {
        "writers": writers,
        "rows": total,
        "seconds": elapsed,
        "rows_per_s": total / elapsed,
        "writer_us": _spent(before, after, "writers") / total * 1e6,
        "backend_us": _spent(before, after, "backends") / total * 1e6,
        "postgres_us": _spent(before, after, "postgres") / total * 1e6,
        "stored_bytes": _spent(before, after, "size") / total,
    }


def _renamed(row, offset: int):
    """The same row under an id of this writer's own."""
    copy = type(row)(**{**row.record(), "charges": row.charges})
    copy.request_id = f"{row.request_id}_{offset}"
    return copy


def _cpu(database: str, ledgers: list[Ledger]) -> dict[str, dict]:
    """CPU seconds so far of each process that counts, by (pid, start time): the writer
    processes, the backends serving `database`, every PostgreSQL process; and the database's size."""
    with psycopg.connect(f"{POSTGRES}/postgres") as connection:
        pids = {pid for (pid,) in connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])}
        (size,) = connection.execute("SELECT pg_database_size(%s)", [database]).fetchone()
    alive = processes()
    writers = {ledger.writer.pid for ledger in ledgers}

    def of(chosen) -> dict:
        return {(pid, process.started): process.cpu_s for pid, process in alive.items() if chosen(pid, process)}

    return {
        "size": {(0, 0): float(size)},
        "writers": of(lambda pid, _: pid in writers),
        "backends": of(lambda pid, _: pid in pids),
        "postgres": of(lambda _, process: process.name == "postgres"),
    }


def _spent(before: dict, after: dict, part: str) -> float:
    """What the processes alive at the end spent since the start (all of it, for one started since)."""
    return sum(value - before[part].get(key, 0.0) for key, value in after[part].items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000, help="requests per writer")
    args = parser.parse_args()
    load_start = record.load_average()
    results = []
    for writers in sorted({1, args.writers}):
        database = f"tollgate_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        try:
            with tempfile.TemporaryDirectory() as scratch:
                results.append(measure(f"{POSTGRES}/{database}", database, writers, args.rows, Path(scratch)))
        finally:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    lines = [
        f"Each request journaled as two snapshots (started, then finished) and written as two upserts; load "
        f"average {' / '.join(map(str, load_start))} at the start, {' / '.join(map(str, record.load_average()))} at "
        f"the end, on {os.cpu_count()} cores shared by the writers and PostgreSQL; "
        f"Tollgate {record.git('rev-parse', '--short', 'HEAD')}. *PostgreSQL, all* counts every PostgreSQL process "
        "on the machine (WAL writer, checkpointer, others' databases too); *backends* only those serving the "
        "run's; *database bytes* its growth (rows, charges, indexes) over the requests.",
        "",
        "| writers | requests | seconds | requests/s | writer CPU µs/request | backends CPU µs/request "
        "| PostgreSQL, all, µs/request | database bytes/request |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result['writers']} | {result['rows']:,} | {result['seconds']:.1f} | {result['rows_per_s']:,.0f} "
            f"| {result['writer_us']:,.0f} | {result['backend_us']:,.0f} | {result['postgres_us']:,.0f} "
            f"| {result['stored_bytes']:,.0f} |"
        )
    report = "\n".join(lines)
    OUT.mkdir(exist_ok=True)
    (OUT / "ledger_capacity.md").write_text(report + "\n")
    sections.update("ledger_capacity")
    print(report)


if __name__ == "__main__":
    main()
