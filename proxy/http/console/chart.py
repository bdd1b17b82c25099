"""The spend page's chart: cost per day, stacked by the first grouping, laid out here
and drawn by the template as inline SVG (no script, no third-party library).

Amounts stay Decimal: a bar's height is its share of the tallest day, in SVG units
rounded to a tenth, so no dollar ever passes through a float."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ...ledger import SpendGroup, from_nano
from ...pricing import usd

PLOT_WIDTH = 720
PLOT_HEIGHT = 200
COLOURS = 8  # series beyond the seven dearest are summed as "others"
MAX_FILLED_DAYS = 92  # a longer period shows the days that have spend, not every day
_TENTH = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Bar:
    x: Decimal
    y: Decimal
    width: Decimal
    height: Decimal
    series: int  # colour class
    title: str  # what a pointer over it shows


@dataclass(frozen=True, slots=True)
class Tick:
    y: Decimal
    label: str


@dataclass(frozen=True, slots=True)
class DayLabel:
    x: Decimal
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    field: str  # the grouping the bars are stacked by
    series: tuple[str, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    days: tuple[DayLabel, ...]
    width: int = PLOT_WIDTH
    height: int = PLOT_HEIGHT

    @property
    def empty(self) -> bool:
        return not self.bars


def daily_chart(field: str, groups: Sequence[SpendGroup], since: str | None, until: str | None) -> Chart:
    """`groups`: spend grouped by `day` and then by `field` (just `day` when `field` is day,
    and then each day is one bar of one colour)."""
    cost: dict[tuple[str, str], int] = {}
    for group in groups:
        key = (str(group.key["day"]), "cost" if field == "day" else _name(group.key.get(field)))
        cost[key] = cost.get(key, 0) + group.cost_nanousd
    by_series: dict[str, int] = {}
    for (_, name), nano in cost.items():
        by_series[name] = by_series.get(name, 0) + nano
    ranked = sorted(by_series, key=lambda name: (-by_series[name], name))
    shown = ranked if len(ranked) <= COLOURS else [*ranked[: COLOURS - 1], "others"]
    index = {name: shown.index(name) if name in shown else COLOURS - 1 for name in ranked}

    days = _days({day for day, _ in cost}, since, until)
    stacks: dict[str, dict[int, int]] = {day: {} for day in days}
    for (day, name), nano in cost.items():
        stack = stacks.setdefault(day, {})
        stack[index[name]] = stack.get(index[name], 0) + nano
    tallest = max((sum(stack.values()) for stack in stacks.values()), default=0)
    top = _round_up(from_nano(tallest) or Decimal(0))
    step = Decimal(PLOT_WIDTH) / max(len(days), 1)
    bars = []
    for position, day in enumerate(days):
        base = Decimal(PLOT_HEIGHT)
        for series, nano in sorted(stacks[day].items()):
            height = _scaled(from_nano(nano) or Decimal(0), top)
            base -= height
            title = f"{day} · {shown[series]}: ${usd(from_nano(nano) or Decimal(0))}"
            bars.append(Bar(_tenth(step * position + step / 10), base, _tenth(step * 8 / 10), height, series, title))
    ticks = tuple(Tick(PLOT_HEIGHT - _scaled(top * part / 4, top), f"${usd(top * part / 4)}") for part in range(5))
    every = max(1, -(-len(days) // 8))  # at most about eight day labels
    labels = tuple(
        DayLabel(_tenth(step * position + step / 2), day[5:])
        for position, day in enumerate(days)
        if position % every == 0
    )
    return Chart(field, tuple(shown), tuple(bars), ticks if tallest else (), labels)


def _days(with_spend: set[str], since: str | None, until: str | None) -> list[str]:
    """Every day of the period where it is short and bounded, else the days with spend."""
    if since:
        first = dt.date.fromisoformat(since[:10])
        end = dt.date.fromisoformat(until[:10]) if until else dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        span = (end - first).days
        if 0 < span <= MAX_FILLED_DAYS:
            filled = {(first + dt.timedelta(days=offset)).isoformat() for offset in range(span)}
            return sorted(filled | with_spend)
    return sorted(with_spend)


def _round_up(amount: Decimal) -> Decimal:
    """The axis' top: 1, 2 or 5 times a power of ten, at or above `amount`."""
    if amount <= 0:
        return Decimal(1)
    power = Decimal(10) ** amount.adjusted()
    for factor in (1, 2, 5, 10):
        if power * factor >= amount:
            return power * factor
    return power * 10


def _scaled(amount: Decimal, top: Decimal) -> Decimal:
    return _tenth(amount / top * PLOT_HEIGHT)


def _tenth(value: Decimal) -> Decimal:
    return value.quantize(_TENTH, rounding=ROUND_HALF_UP)


def _name(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
