"""Request ids: sortable by time (the ledger's key and index), unique across replicas."""

from __future__ import annotations

import secrets
import time


def new_request_id() -> str:
    return f"req_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"
