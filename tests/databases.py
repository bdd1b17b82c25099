"""Real databases for tests: a throwaway PostgreSQL database on the local server
(127.0.0.1:5432, trust auth), or a SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"tollgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
