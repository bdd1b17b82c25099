"""A reconciliation as text: a line per day and model (the provider's line items under
it), the likely causes under every line over the tolerance, and a closing verdict."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ...pricing import usd
from .compare import Line

HEADER = ("day", "model", "ledger req", "provider req", "ledger USD", "provider USD", "diff USD", "diff %", "")
_NUMERIC = range(2, 8)  # right-aligned


def render(lines: Sequence[Line], heading: str, tolerance_pct: Decimal) -> str:
    table: list[tuple[str, ...]] = [HEADER]
    notes: dict[int, list[str]] = {}  # after which table row, what to say
    for line in lines:
        provider = line.provider
        table.append(
            (
                line.day.isoformat(),
                line.model,
                str(line.ledger.requests),
                _or_dash(provider.requests),
                usd(line.ledger_usd),
                _money(provider.cost),
                _money(line.diff_usd),
                _percent(line.diff_pct, line.diff_usd),
                "OFF" if line.off else "",
            )
        )
        for item, ours, theirs in line.items():
            table.append(("", f"  · {item}", "", "", _money(ours), usd(theirs), _money(_minus(ours, theirs)), "", ""))
        if causes := line.causes():
            notes[len(table) - 1] = [f"    likely: {cause}" for cause in causes]
    widths = [max(len(row[column]) for row in table) for column in range(len(HEADER))]
    text = [heading, ""]
    for index, row in enumerate(table):
        cells = [
            cell.rjust(width) if column in _NUMERIC else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
        text.extend(notes.get(index, []))
    off_days = sorted({line.day.isoformat() for line in lines if line.off})
    days = len({line.day for line in lines})
    text.append("")
    if off_days:
        text.append(f"{len(off_days)} of {days} days off by more than {tolerance_pct}%: {', '.join(off_days)}")
    elif lines:
        text.append(f"{days} day{'s' if days != 1 else ''}, each within {tolerance_pct}%")
    else:
        text.append("nothing billed on either side in these days")
    return "\n".join(text)


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _money(value: Decimal | None) -> str:
    return "-" if value is None else usd(value)


def _minus(ours: Decimal | None, theirs: Decimal) -> Decimal | None:
    return None if ours is None else ours - theirs


def _percent(pct: Decimal | None, diff: Decimal | None) -> str:
    if pct is None:
        return "-" if not diff else "new"  # the provider billed nothing here: any cost is all difference
    return f"{pct.quantize(Decimal('0.01')):+}%"
