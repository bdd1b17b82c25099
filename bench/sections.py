"""The sections of results.md that the benchmark's separate commands own: each writes
its latest figures to bench/out/<name>.md, and results.md shows them between markers.
A command updates its own section in place (`update`); report.py, rendering the main
run, takes each from bench/out/ when that command ran here and otherwise keeps the
section results.md already has (`kept`), so a main run never drops another's figures."""

from __future__ import annotations

import re
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
RESULTS = BENCH / "results.md"

# name (its file in bench/out/) → the section's title and the command that writes it
SEPARATE = {
    "ledger_writer": ("Ledger writer throughput", "bench/ledger_writer.py"),
    "ledger_capacity": ("PostgreSQL ledger capacity, several writers", "bench/ledger_capacity.py"),
    "replicas": ("Replicas behind nginx, one killed and restarted", "bench/replicas.py"),
    "ledger_scale": ("Ledger at scale", "bench/ledger_scale.py"),
}
_BEFORE = "## Set-up"  # a section not yet in results.md goes in before this one


def block(name: str) -> str:
    """The section from bench/out/, between its markers; "" when its command has not run here."""
    measured = OUT / f"{name}.md"
    if not measured.exists():
        return ""
    title, command = SEPARATE[name]
    body = f"## {title}\n\nFrom `.venv/bin/python {command}`:\n\n{measured.read_text().strip()}"
    return f"<!-- {name} -->\n{body}\n<!-- /{name} -->"


def kept() -> list[str]:
    """Each separate command's section, for a new results.md: this machine's latest, or the current file's."""
    current = RESULTS.read_text() if RESULTS.exists() else ""
    found = []
    for name in SEPARATE:
        existing = _marked(name).search(current)
        found.append(block(name) or (existing[0] if existing else ""))
    return [section for section in found if section]


def update(name: str) -> None:
    """Put the command's latest section into results.md, in its place or before the set-up."""
    section = block(name)
    text = RESULTS.read_text()
    if _marked(name).search(text):
        text = _marked(name).sub(lambda _: section, text, count=1)
    elif _BEFORE in text:
        text = text.replace(_BEFORE, f"{section}\n\n{_BEFORE}", 1)
    else:
        text = text.rstrip("\n") + f"\n\n{section}\n"
    RESULTS.write_text(text)


def _marked(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- {name} -->\n.*?\n<!-- /{name} -->", re.DOTALL)
