"""Ledger rows for bench/ledger_scale.py: a realistic ledger, generated fast and the
same at every run (a seeded generator), loaded with COPY (PostgreSQL) or
executemany (SQLite), with the daily rollup summed by the code the writer uses.

The traffic: six routes on four surfaces, twenty keys in five teams, three
providers (one priced from the catalog). 93% of requests answered with one charge,
1% answered after a failed attempt another provider bills (two charges), 3.5%
errors nobody bills, 1.5% streams the client closed, 0.5% abandoned mid-request;
costs vary per request. Rows are spread evenly over whole months, in time order,
as a writer inserts them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.ledger import rollup
from proxy.ledger.columns import ALL_CHARGE_COLUMNS, COLUMNS
from proxy.ledger.partitions import next_month
from proxy.ledger.row import answers, priced
from proxy.ledger.sql import SqlLedger

ROUTES = (  # route, surface, upstream model, owner, payers (provider, share)
    ("gpt-image-2", "images.generate", "gpt-image-2", "platform-team", (("openai", 0.7), ("acme", 0.3))),
    ("gpt-image-2-edit", "images.edit", "gpt-image-2", "platform-team", (("openai", 1.0),)),
    ("gpt-5.4", "chat.completions", "gpt-5.4", "assistants-team", (("openai", 0.8), ("acme", 0.2))),
    ("gpt-5.4-mini", "responses", "gpt-5.4-mini", "assistants-team", (("openai", 1.0),)),
    ("claude-sonnet", "chat.completions", "anthropic/claude-sonnet-4", "assistants-team", (("anthropic", 1.0),)),
    ("embed-small", "embeddings", "text-embedding-3-small", "search-team", (("openai", 1.0),)),
)
PAYERS = {  # provider: billing owner, price table, price source
    "openai": ("openai/org-acme", "openai-official", "official"),
    "acme": ("acme/acct-42", "acme-2026-11", "provider"),
    "anthropic": ("anthropic/org-acme", "litellm-catalog", "catalog"),
}
TEAMS = ("growth", "search", "studio", "support", "research")
KEYS = tuple((f"key-{index:02d}", TEAMS[index % len(TEAMS)]) for index in range(20))
_ROW_INDEX = {name: index for index, name in enumerate(COLUMNS)}


@dataclass(frozen=True)
class Shape:
    rows: int
    first_month: str  # YYYY-MM
    months: int
    seed: int = 15

    @property
    def days(self) -> list[dt.date]:
        month, days = self.first_month, []
        for _ in range(self.months):
            start = dt.date.fromisoformat(f"{month}-01")
            end = dt.date.fromisoformat(f"{next_month(month)}-01")
            days += [start + dt.timedelta(days=offset) for offset in range((end - start).days)]
            month = next_month(month)
        return days


@dataclass
class Day:
    day: str
    rows: list[tuple]  # in COLUMNS order
    charges: list[tuple]  # in ALL_CHARGE_COLUMNS order
    delta: dict  # what the day adds to the rollup


def days_of(shape: Shape) -> Iterator[Day]:
    generator = random.Random(shape.seed)
    days = shape.days
    per_day, extra = divmod(shape.rows, len(days))
    for index, day in enumerate(days):
        count = per_day + (1 if index < extra else 0)
        yield _day(generator, day, count)


def _day(generator: random.Random, day: dt.date, count: int) -> Day:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    rows, charges, records = [], [], []
    for index in range(count):
        moment = start + dt.timedelta(seconds=(index + generator.random()) * 86_400 / count)
        row, row_charges = _request(generator, moment)
        rows.append(row)
        charges += row_charges
        records.append(_record(row, row_charges))
    return Day(day.isoformat(), rows, charges, rollup.difference([], records))


def _request(generator: random.Random, moment: dt.datetime) -> tuple[tuple, list[tuple]]:
    route, surface, model, owner, payers = generator.choice(ROUTES)
    key_id, team = generator.choice(KEYS)
    provider = generator.choices([name for name, _ in payers], [share for _, share in payers])[0]
    billing_owner, table, source = PAYERS[provider]
    image = surface.startswith("images.")
    cost = generator.randint(20_000_000, 180_000_000) if image else generator.randint(20_000, 4_000_000)
    latency = generator.uniform(4_000, 20_000) if image else generator.uniform(200, 3_000)
    created = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    finished = (moment + dt.timedelta(milliseconds=latency)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    request_id = f"req_{int(moment.timestamp() * 1000):012x}{generator.getrandbits(64):016x}"
    draw = generator.random()
    status, http, basis, error = "ok", 200, "usage", None
    charges = [(provider, billing_owner, table, source, cost, "usage")]
    if draw < 0.01:  # answered after a failed attempt that another provider bills
        other = "acme" if provider != "acme" else "openai"
        charges.append((other, *PAYERS[other], cost // 10, "estimate"))
    elif draw < 0.045:
        status, http, basis, error, cost, charges = "error", 502, "unpriced", "upstream_error", None, []
    elif draw < 0.06:
        status, http, basis, cost = "client_closed", 200, "partial_estimate", cost // 2
        charges = [(provider, billing_owner, table, source, cost, basis)]
    elif draw < 0.065:
        status, http, basis, error = "abandoned", None, "estimate", "abandoned"
        charges = [(provider, billing_owner, table, source, cost, basis)]
    tokens_in, tokens_out = generator.randint(20, 3_000), generator.randint(50, 2_000)
    lines = (
        []
        if status in ("error", "abandoned")
        else [
            {"model": model, "item": "text_input tokens", "quantity": tokens_in, "unit_usd": "0.000005"},
            {"model": model, "item": "image_output tokens" if image else "text_output tokens", "quantity": tokens_out},
        ]
    )
    attempts = [{"provider": provider, "model": model, "status": http, "latency_ms": round(latency, 1), "error": error}]
    values: dict[str, Any] = {
        "request_id": request_id,
        "created_at": created,
        "surface": surface,
        "status": status,
        "finished_at": finished,
        "http_status": http,
        "error_type": error,
        "key_id": key_id,
        "team": team,
        "route": route,
        "route_owner": owner,
        "provider": provider,
        "upstream_model": model,
        "billing_owner": billing_owner,
        "price_table": table,
        "price_source": source,
        "cost_nanousd": cost,
        "estimated_cost_nanousd": cost,
        "cost_basis": basis,
        "input_text_tokens": tokens_in,
        "output_text_tokens": None if image else tokens_out,
        "output_image_tokens": tokens_out if image else None,
        "images": 1 if image else None,
        "size": "1024x1536" if image else None,
        "quality": "medium" if image else None,
        "output_format": "png" if image else None,
        "prompt_version": "v7",
        "file_urls": "[]",
        "review_status": "pending" if image else "not_required",
        "attempts": orjson.dumps(attempts).decode(),
        "upstream_request_id": f"up_{request_id[4:]}",
        "latency_ms": latency,
        "simulated": False,
        "config_version": "31f6d11f05df",
        "cost_lines": orjson.dumps(lines).decode(),
        "owner": "bench",
        "day": created[:10],
    }
    row = tuple(values.get(name) for name in COLUMNS)
    day = created[:10]
    charge_rows = [
        (request_id, day, seq, *charge, None, None, *priced(lines, answered=answers(seq, charge[0], provider, lines)))
        for seq, charge in enumerate(charges)
    ]
    return row, charge_rows


def _record(row: tuple, charges: list[tuple]) -> dict[str, Any]:
    """The row as the rollup reads a journal record."""
    record = {name: row[_ROW_INDEX[name]] for name in _ROW_INDEX}
    names = ALL_CHARGE_COLUMNS
    record["charges"] = [dict(zip(names, charge, strict=True)) for charge in charges]
    return record


def load(sql: SqlLedger, shape: Shape, progress: Any = print) -> int:
    """Generate `shape` into the ledger at `sql` (its tables made first); the rows loaded."""
    loaded = 0
    with sql.connect() as connection:
        sql.create_schema(connection)
    for day in days_of(shape):
        with sql.connect() as connection:
            cursor = connection.cursor()
            if sql.postgres:
                cursor.execute("SET LOCAL synchronous_commit TO off")
                sql.schema.partitions.ensure(cursor, {day.day[:7]})
                for table, columns, rows in (
                    ("ledger", COLUMNS, day.rows),
                    ("ledger_charges", ALL_CHARGE_COLUMNS, day.charges),
                ):
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            else:
                for table, columns, rows in (
                    ("ledger", COLUMNS, day.rows),
                    ("ledger_charges", ALL_CHARGE_COLUMNS, day.charges),
                ):
                    marks = ", ".join("?" * len(columns))
                    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            rollup.apply(cursor, day.delta, mark="%s" if sql.postgres else "?")
        loaded += len(day.rows)
        if day.day.endswith("-01"):
            progress(f"  {day.day}: {loaded:,} rows loaded")
    return loaded
