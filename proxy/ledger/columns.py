"""The ledger's columns, as the SQL tables hold them: declared once, from the row's
own fields, for the statements that write rows, read them and make the tables."""

from __future__ import annotations

from dataclasses import fields

from .row import Charge, LedgerRow

JSON = ("file_urls", "attempts", "cost_lines", "review")
ROW_COLUMNS = tuple(f.name for f in fields(LedgerRow) if f.name != "charges")
# `day` (the UTC date of `created_at`) is what the tables are partitioned and rolled up by.
COLUMNS = (*ROW_COLUMNS, "day")
JSON_INDEXES = tuple(ROW_COLUMNS.index(name) for name in JSON)
KEPT_ON_UPDATE = ("request_id", "created_at", "day", "review_status", "review")
CHARGE_COLUMNS = tuple(f.name for f in fields(Charge))
# A charge carries its row's day: it lives in the same month's partition, and is archived with it;
# and what its table priced (row.priced), so that a day's charges are summed in SQL (charge_sums.py).
ALL_CHARGE_COLUMNS = ("request_id", "day", "seq", *CHARGE_COLUMNS, "priced_quantity", "priced_unit")
TYPES = {
    "created_at": "TEXT NOT NULL",
    "day": "TEXT NOT NULL",
    "surface": "TEXT NOT NULL",
    "status": "TEXT NOT NULL",
    "http_status": "INTEGER",
    "cost_nanousd": "BIGINT",
    "estimated_cost_nanousd": "BIGINT",
    "input_text_tokens": "BIGINT",
    "input_image_tokens": "BIGINT",
    "cached_input_tokens": "BIGINT",
    "output_text_tokens": "BIGINT",
    "output_image_tokens": "BIGINT",
    "images": "INTEGER",
    "latency_ms": "DOUBLE PRECISION",
    "simulated": "BOOLEAN NOT NULL",
    "list_cost_nanousd": "BIGINT",
    "seq": "INTEGER NOT NULL",
    "priced_quantity": "BIGINT",
}
# NULL allowed in SQLite: an older ledger's charges had no day, and gain it when upgraded.
CHARGE_TYPES = {**TYPES, "cost_nanousd": "BIGINT NOT NULL", "day": "TEXT"}


def column_list(names: tuple[str, ...], types: dict[str, str]) -> str:
    return ", ".join(f"{name} {types.get(name, 'TEXT')}" for name in names)
