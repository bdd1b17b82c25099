"""The launch record: every step with its pass condition, result and evidence,
the requests the check made with their cost, and the check's spend. Printed for
people, and written as Markdown or JSON for the launch record."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from .api import PURPOSE, LaunchApi
from .step import StepResult

_WIDTH = 100  # of the text column in the printed table


@dataclass(frozen=True, slots=True)
class RequestLine:
    request_id: str
    step: int
    what: str
    status: str  # the ledger's status and HTTP status, e.g. "ok 200"
    cost_usd: str | None


@dataclass(frozen=True, slots=True)
class LaunchReport:
    route: str
    config: str
    config_version: str
    proxy: str  # where the check ran its requests
    started_at: str
    steps: tuple[StepResult, ...]
    requests: tuple[RequestLine, ...]
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """No step failed. A step that does not apply (no Responses route) is skipped, not failed."""
        return not any(step.outcome == "fail" for step in self.steps)

    @property
    def spend_usd(self) -> Decimal:
        return sum((Decimal(line.cost_usd) for line in self.requests if line.cost_usd is not None), Decimal(0))

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASSED: the route is ready for production traffic"
        failed = ", ".join(str(step.number) for step in self.steps if step.outcome == "fail")
        return f"FAILED: step(s) {failed} failed; fix what they say and run the check again"

    @property
    def spend(self) -> str:
        return f"${self.spend_usd} over {len(self.requests)} request(s), marked purpose {PURPOSE} in the ledger"


def requests_of(api: LaunchApi) -> tuple[RequestLine, ...]:
    """The requests the check made, as the ledger last showed them."""
    lines = []
    for sent in api.sent:
        row = api.rows.get(sent.request_id)
        status = f"{row['status']} {row['http_status']}" if row else "no ledger row read"
        lines.append(RequestLine(sent.request_id, sent.step, sent.what, status, row["cost_usd"] if row else None))
    return tuple(lines)


def render_text(report: LaunchReport) -> str:
    lines = [
        f"tollgate launch-check: route {report.route} ({report.config}, version {report.config_version})",
        f"proxy: {report.proxy}",
        *(f"note: {note}" for note in report.notes),
        "",
        f" #  {'step':<20} {'result':<8} pass condition / reason / evidence",
    ]
    indent = " " * 34
    for step in report.steps:
        column = textwrap.wrap(step.condition, _WIDTH)
        if step.reason:
            column += textwrap.wrap(f"{step.outcome.upper()}: {step.reason}", _WIDTH)
        column += [f"- {item}" for item in step.evidence]
        lines.append(f"{step.number:>2}  {step.title:<20} {step.outcome.upper():<8} {column[0]}")
        lines += [f"{indent}{text}" for text in column[1:]]
    lines += ["", f"spend: {report.spend}", f"launch check {report.verdict}"]
    return "\n".join(lines) + "\n"


def render_markdown(report: LaunchReport) -> str:
    lines = [
        f"# Launch check: route `{report.route}`",
        "",
        f"- result: **{report.verdict}**",
        f"- config: `{report.config}` (version `{report.config_version}`)",
        f"- proxy: {report.proxy}",
        f"- started: {report.started_at}",
        f"- spend: {report.spend}",
        *(f"- note: {_cell(note)}" for note in report.notes),
        "",
        "| # | step | pass condition | result | evidence |",
        "| --- | --- | --- | --- | --- |",
    ]
    for step in report.steps:
        result = f"**{step.outcome}**" + (f": {step.reason}" if step.reason else "")
        evidence = "<br>".join(_cell(item) for item in step.evidence)
        lines.append(f"| {step.number} | {step.title} | {_cell(step.condition)} | {_cell(result)} | {evidence} |")
    lines += [
        "",
        "## Requests",
        "",
        "| request id | step | what | ledger | cost (USD) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for line in report.requests:
        lines.append(
            f"| `{line.request_id}` | {line.step} | {_cell(line.what)} | {line.status} | {line.cost_usd or '-'} |"
        )
    lines.append(f"| | | | total | {report.spend_usd} |")
    return "\n".join(lines) + "\n"


def render_json(report: LaunchReport) -> str:
    document: dict[str, Any] = {
        "object": "tollgate.launch_check",
        "route": report.route,
        "config": report.config,
        "config_version": report.config_version,
        "proxy": report.proxy,
        "started_at": report.started_at,
        "passed": report.passed,
        "notes": list(report.notes),
        "steps": [step.as_dict() for step in report.steps],
        "requests": [
            {
                "request_id": line.request_id,
                "step": line.step,
                "what": line.what,
                "status": line.status,
                "cost_usd": line.cost_usd,
            }
            for line in report.requests
        ],
        "spend_usd": format(report.spend_usd, "f"),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
