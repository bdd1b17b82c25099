"""`tollgate ledger ...`: the ledger database's own upkeep, run beside the proxies.

- `archive --before YYYY-MM`: whole months out to gzip files (archive.py);
- `migrate`: bring a ledger an older Tollgate made up to date now (monthly partitions,
  the rollup), rather than at the next proxy's start (docs/ledger-at-scale.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_CONFIG_ERROR = 0, 1, 2


def add_ledger_commands(commands: Any) -> None:
    ledger = commands.add_parser("ledger", help="the ledger database's upkeep").add_subparsers(title="ledger commands")
    archive = ledger.add_parser(
        "archive", help="move whole months before YYYY-MM out of the ledger database into gzip files"
    )
    archive.add_argument("--config", required=True)
    archive.add_argument("--before", required=True, help="YYYY-MM: every month before it is archived")
    archive.add_argument(
        "--to", default="ledger-archive", type=Path, help="the directory for the files (default: ledger-archive)"
    )
    archive.add_argument(
        "--keep-tables",
        action="store_true",
        help="PostgreSQL: keep each month's detached partitions (archived_ledger_yYYYYmMM), rather than drop them",
    )
    archive.set_defaults(run=_archive)
    migrate = ledger.add_parser("migrate", help="upgrade a ledger an older Tollgate made, now (partitions, rollup)")
    migrate.add_argument("--config", required=True)
    migrate.set_defaults(run=_migrate)


def _archive(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_config
    from ..ledger.filters import Refused
    from .archive import archive_before
    from .reports import LedgerUnavailable

    try:
        settings = load_config(args.config, os.environ).config.ledger
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        done = archive_before(
            settings.url, args.before, args.to, keep_tables=args.keep_tables, wait_s=settings.read_wait_s
        )
    except (Refused, ValueError) as error:
        print(f"tollgate ledger archive: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except LedgerUnavailable as error:
        print(f"tollgate ledger archive: {error}", file=sys.stderr)
        return EXIT_FAILED
    if not done:
        print(f"nothing to archive: no rows before {args.before}")
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_config
    from ..ledger import SqlLedger

    try:
        url = load_config(args.config, os.environ).config.ledger.url
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    sql = SqlLedger(url)
    try:
        with sql.connect() as connection:
            sql.create_schema(connection)
    except Exception as error:  # the driver's message names the problem; the URL may hold a password
        print(f"tollgate ledger migrate: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print("the ledger is up to date: monthly partitions (PostgreSQL), the daily rollup, the archive's table")
    return EXIT_OK
