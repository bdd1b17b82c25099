"""`tollgate reconcile`: the ledger against what a provider says it billed (OpenAI's
organization Costs and Usage reports, or a reseller's CSV), per UTC day and model,
flagging each day over a tolerance and naming the likely cause."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ...config import Config
from ...ledger import Filters
from ..reports import LedgerUnavailable, read_ledger
from .compare import Line, reconcile
from .ledger_figures import ledger_figures
from .openai_api import FetchError, fetch_openai_reports
from .provider_reports import ProviderReport, ReportError, read_reports
from .render import render

__all__ = ["Line", "Reconciliation", "Refused", "reconcile_provider", "render"]
OPENAI_API = "https://api.openai.com/v1"


class Refused(Exception):
    """What was asked cannot be reconciled; the message says what to change."""


@dataclass(frozen=True)
class Reconciliation:
    provider: str
    files: list[Path]
    from_api: bool
    since: dt.date | None
    until: dt.date | None  # exclusive
    tolerance_pct: Decimal
    admin_key: str  # with from_api: an OpenAI Admin API key
    admin_key_env: str  # where it was looked for, to say so


def reconcile_provider(config: Config, asked: Reconciliation) -> tuple[str, list[Line]]:
    """A heading and the lines: the provider's report against the ledger, day by day."""
    provider = config.providers.get(asked.provider)
    if provider is None:
        raise Refused(f"no provider '{asked.provider}' in the config; it has: {', '.join(config.providers)}")
    if not asked.tolerance_pct >= 0:
        raise Refused("--tolerance is a percentage of 0 or more, e.g. 1")
    try:
        report = _fetch(asked, provider.kind, provider.base_url) if asked.from_api else read_reports(asked.files)
    except (ReportError, FetchError) as error:
        raise Refused(str(error)) from None
    days = {
        day
        for day in report.days
        if (asked.since is None or day >= asked.since) and (asked.until is None or day < asked.until)
    }
    if not days:
        raise Refused("the provider's report covers no day in the period asked for; check --since and --until")
    filters = Filters(since=min(days).isoformat(), until=(max(days) + dt.timedelta(days=1)).isoformat())
    try:
        figures = read_ledger(
            config.ledger.url,
            lambda sql, reader: ledger_figures(sql.billed_by(reader, asked.provider, filters)),
            wait_s=config.ledger.read_wait_s,
        )
    except LedgerUnavailable as error:
        raise Refused(str(error)) from None
    heading = (
        f"{asked.provider} (billing owner {provider.billing_owner}): the ledger against {', '.join(report.sources)}, "
        f"{min(days)} to {max(days)}, tolerance {asked.tolerance_pct}%"
    )
    return heading, reconcile(figures, report, days, asked.tolerance_pct)


def _fetch(asked: Reconciliation, kind: str, base_url: str | None) -> ProviderReport:
    if kind != "openai":
        raise Refused(f"--from-api reads OpenAI's organization reports; '{asked.provider}' is of kind {kind}")
    if not asked.admin_key:
        raise Refused(f"set {asked.admin_key_env} to an OpenAI Admin API key: the organization reports need one")
    today = dt.datetime.now(dt.UTC).date()
    start, end = asked.since or today - dt.timedelta(days=7), asked.until or today + dt.timedelta(days=1)
    return fetch_openai_reports(base_url or OPENAI_API, asked.admin_key, _midnight(start), _midnight(end))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)
