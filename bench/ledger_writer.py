"""How many ledger rows per second the writer moves from the journal into the
database, on SQLite and on PostgreSQL (the local server, a throwaway database).

    .venv/bin/python bench/ledger_writer.py [--rows 50000]

Each row is journaled twice, as the proxy does (started, then finished with its
charge and cost lines), all at once; the clock runs from the first append until
the writer has applied the last byte. Prints a Markdown table and writes it to
bench/out/ledger_writer.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from proxy.config.schema import LedgerSettings
from proxy.ledger import Charge, Filters, Ledger, LedgerRow, utc_now

OUT = Path(__file__).parent / "out"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
TARGET_ROWS_PER_S = 5000


def realistic_row(index: int) -> tuple[LedgerRow, LedgerRow]:
    started = LedgerRow(
        request_id=f"req_bench_{index:09d}",
        created_at=utc_now(),
        surface="images.generate",
        key_id="web-app",
        team="growth",
        route="gpt-image-2",
        route_owner="platform-team",
        provider="openai",
        upstream_model="gpt-image-2",
        billing_owner="openai/org-acme",
        price_table="openai-official",
        price_source="official",
        estimated_cost_nanousd=41_175_000,
        size="1024x1536",
        quality="medium",
        output_format="png",
        prompt_version="v7",
        review_status="pending",
        config_version="31f6d11f05df",
    )
    finished = LedgerRow(**{**started.record(), "charges": []})
    finished.status, finished.finished_at, finished.http_status = "ok", utc_now(), 200
    finished.cost_basis, finished.cost_nanousd = "usage", 41_175_000
    finished.input_text_tokens, finished.output_image_tokens, finished.images = 23, 1372, 1
    finished.attempts = [
        {"provider": "openai", "model": "gpt-image-2", "status": 200, "latency_ms": 9120.5, "error": None}
    ]
    finished.cost_lines = [
        {
            "model": "gpt-image-2",
            "item": "text_input tokens",
            "quantity": 23,
            "unit_usd": "0.000005",
            "amount_usd": "0.000115",
        },
        {
            "model": "gpt-image-2",
            "item": "image_output tokens",
            "quantity": 1372,
            "unit_usd": "0.00003",
            "amount_usd": "0.04116",
        },
    ]
    finished.charges = [Charge("openai", "openai/org-acme", "openai-official", "official", 41_175_000, "usage")]
    return started, finished


async def measure(url: str, rows: int, journal: Path) -> tuple[float, int]:
    ledger = Ledger(LedgerSettings(url=url, journal_dir=str(journal), drain_timeout_s=120))
    assert ledger.writer.wait_until_connected(30) and ledger.writer.wait_until_applied(30)
    snapshots = [realistic_row(index) for index in range(rows)]
    began = time.perf_counter()
    for started, finished in snapshots:
        ledger.write(started)
        ledger.write(finished)
    assert ledger.writer.wait_until_applied(600), "the writer fell behind for ten minutes"
    elapsed = time.perf_counter() - began
    (total,) = await ledger.spend([], Filters())
    await ledger.close()
    return elapsed, total.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        sqlite_url = f"sqlite:///{scratch}/ledger.db"
        results.append(("SQLite (WAL)", *asyncio.run(measure(sqlite_url, args.rows, Path(scratch) / "j1"))))
        name = f"tollgate_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            results.append(("PostgreSQL", *asyncio.run(measure(f"{POSTGRES}/{name}", args.rows, Path(scratch) / "j2"))))
        finally:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    lines = [
        f"Ledger writer: {args.rows:,} rows, each journaled twice (started, finished), applied by the writer process.",
        "",
        "| database | rows | seconds | rows/s | target (≥ 5,000 rows/s) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for database, elapsed, stored in results:
        assert stored == args.rows, f"{database}: {stored} rows stored of {args.rows}"
        rate = args.rows / elapsed
        verdict = "pass" if rate >= TARGET_ROWS_PER_S else "FAIL"
        lines.append(f"| {database} | {stored:,} | {elapsed:.2f} | {rate:,.0f} | {verdict} |")
    report = "\n".join(lines)
    OUT.mkdir(exist_ok=True)
    (OUT / "ledger_writer.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
