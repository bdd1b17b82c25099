"""The ledger against a provider's report, per UTC day and model: the difference in
USD and percent, whether it is over the tolerance, and the likely causes where the
ledger can tell (rows abandoned mid-request, rows costed from an estimate, request
counts apart, a price table whose figures are not the provider's)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from ...ledger import from_nano
from ...pricing import usd
from .ledger_figures import LedgerFigures
from .provider_reports import ALL_MODELS, ProviderFigures, ProviderReport

EVERY_MODEL = "(all models)"  # a day compared whole: the provider did not break it down by model
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-image-2-2026-04-21 is billed as gpt-image-2's snapshot


@dataclass(frozen=True)
class Line:
    day: dt.date
    model: str
    ledger: LedgerFigures
    provider: ProviderFigures
    tolerance_pct: Decimal

    @property
    def ledger_usd(self) -> Decimal:
        return from_nano(self.ledger.cost_nanousd) or Decimal(0)

    @property
    def diff_usd(self) -> Decimal | None:
        return None if self.provider.cost is None else self.ledger_usd - self.provider.cost

    @property
    def diff_pct(self) -> Decimal | None:
        return _pct(self.ledger_usd, self.provider.cost)

    @property
    def off(self) -> bool:
        provider = self.provider
        cost_off = provider.cost is not None and self._over(self.ledger_usd, provider.cost)
        requests_off = provider.requests is not None and self._over(
            Decimal(self.ledger.requests), Decimal(provider.requests)
        )
        return cost_off or requests_off

    def items(self) -> list[tuple[str, Decimal | None, Decimal]]:
        """The provider's line items, each with the ledger's amount for it where the ledger has one."""
        return [
            (item, from_nano(self.ledger.line_items[item]) if item in self.ledger.line_items else None, amount)
            for item, amount in sorted(self.provider.line_items.items())
        ]

    def causes(self) -> list[str]:
        if not self.off:
            return []
        ledger, provider, found = self.ledger, self.provider, []
        if ledger.abandoned:
            found.append(
                f"{_count(ledger.abandoned, 'request')} the ledger has as `abandoned` (the proxy stopped "
                f"mid-request), costed at the estimate (${_usd(ledger.abandoned_nanousd)}): the provider bills "
                "what it finished, at the usage it measured"
            )
        if ledger.estimated:
            found.append(
                f"{_count(ledger.estimated, 'streamed or unreported row')} costed from the estimate, not usage (a "
                f"stream cut short or closed by its client, or an upstream that sent no usage): "
                f"${_usd(ledger.estimated_nanousd)} of the ledger's cost is estimated"
            )
        if provider.requests is not None and provider.requests > ledger.requests:
            found.append(
                f"the provider counted {_count(provider.requests - ledger.requests, 'request')} more than the ledger "
                "has: traffic that did not pass through Tollgate (another app on the same account or key?)"
            )
        elif provider.requests is not None and provider.requests < ledger.requests - ledger.abandoned:
            found.append(
                f"the ledger has {_count(ledger.requests - provider.requests, 'request')} more than the provider "
                "counted: charges the provider does not make (a failed attempt billed by `failed_attempts`?), or a "
                "report that does not cover the whole day"
            )
        same_requests = provider.requests is None or provider.requests == ledger.requests
        if provider.cost is not None and ledger.requests and same_requests and not found:
            found.append(self._price_cause())
        return found or ["no cause found in the ledger: compare the provider's line items with the rows' cost lines"]

    def _price_cause(self) -> str:
        """The same requests at a different cost: the table's per-unit figures are not the provider's."""
        ledger, provider = self.ledger, self.provider
        assert provider.cost is not None
        if provider.images and ledger.images:
            unit, ours, theirs = "image", ledger.images, provider.images
        else:
            unit, ours, theirs = "request", ledger.requests, provider.requests or ledger.requests
        tables = ", ".join(sorted(ledger.tables)) or "its price table"
        items = [
            f"its '{item}' line is ${usd(amount)} against the ledger's ${usd(mine)}"
            for item, mine, amount in self.items()
            if mine is not None and self._over(mine, amount)
        ]
        return (
            f"the requests agree but the cost does not: ${_each(self.ledger_usd, ours)} per {unit} on {tables} "
            f"against the provider's ${_each(provider.cost, theirs)}; the table's per-unit prices do not match "
            "the provider's" + (f" ({'; '.join(items)})" if items else "")
        )

    def _over(self, ours: Decimal, theirs: Decimal) -> bool:
        pct = _pct(ours, theirs)
        return ours != theirs if pct is None else abs(pct) > self.tolerance_pct


def reconcile(
    ledger: dict[tuple[dt.date, str], LedgerFigures],
    report: ProviderReport,
    days: Iterable[dt.date],
    tolerance_pct: Decimal,
) -> list[Line]:
    lines = []
    for day in sorted(days):
        theirs = {model: figures for (on, model), figures in report.figures.items() if on == day}
        ours = {model: figures for (on, model), figures in ledger.items() if on == day}
        if ALL_MODELS in theirs:  # the provider gives the day whole: compare it whole
            if theirs or ours:
                lines.append(
                    Line(day, EVERY_MODEL, _ledger_sum(ours.values()), _provider_sum(theirs.values()), tolerance_pct)
                )
            continue
        by_model: dict[str, list[ProviderFigures]] = {}
        for model, figures in theirs.items():
            by_model.setdefault(_ledger_name(str(model), ours), []).append(figures)
        for model in sorted(set(by_model) | set(ours)):
            lines.append(
                Line(
                    day,
                    model,
                    ours.get(model) or LedgerFigures(),
                    _provider_sum(by_model.get(model, [])),
                    tolerance_pct,
                )
            )
    return lines


def _ledger_name(model: str, ours: dict[str, LedgerFigures]) -> str:
    """The provider's model name as the ledger knows it: a dated snapshot counts as its model."""
    if model in ours:
        return model
    bare = _SNAPSHOT.sub("", model)
    return bare if bare in ours else model


def _ledger_sum(figures: Iterable[LedgerFigures]) -> LedgerFigures:
    total = LedgerFigures()
    for part in figures:
        total.requests += part.requests
        total.cost_nanousd += part.cost_nanousd
        total.images += part.images
        total.abandoned += part.abandoned
        total.abandoned_nanousd += part.abandoned_nanousd
        total.estimated += part.estimated
        total.estimated_nanousd += part.estimated_nanousd
        total.tables |= part.tables
        for item, nano in part.line_items.items():
            total.line_items[item] = total.line_items.get(item, 0) + nano
    return total


def _provider_sum(figures: Iterable[ProviderFigures]) -> ProviderFigures:
    total = ProviderFigures()
    for part in figures:
        for item, amount in part.line_items.items():
            total.add_cost(amount, item)
        if part.cost is not None:
            total.add_cost(part.cost - sum(part.line_items.values(), Decimal(0)), None)
        if part.requests is not None:
            total.add_requests(part.requests, part.images)
    return total


def _pct(ours: Decimal, theirs: Decimal | None) -> Decimal | None:
    """The difference as a percentage of the provider's figure; None where that is 0 or unknown."""
    if theirs is None or theirs == 0:
        return None
    return (ours - theirs) / theirs * 100


def _usd(nano: int) -> str:
    return usd(from_nano(nano) or Decimal(0))


def _each(total: Decimal, count: int) -> str:
    return usd((total / count).quantize(Decimal("0.000001"))) if count else "-"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
