"""The launch record: the verdict (a skipped step does not fail the launch, a failed
one does), the spend of the check's requests, and the same facts as a table, as
Markdown and as JSON."""

from __future__ import annotations

from decimal import Decimal

import orjson

from proxy.launch.report import LaunchReport, RequestLine, render_json, render_markdown, render_text
from proxy.launch.step import StepResult

OWNERSHIP = StepResult(1, "Ownership", "the route names its owner", "pass", evidence=("route owner platform-team",))
ASSISTANT = StepResult(5, "Assistant flow", "where there is a Responses route", "skipped", "no Responses route")
COST = StepResult(6, "Cost check", "within 25%", "fail", "the actual cost $0.06 is 45.5% off | the estimate", ("x",))
REQUESTS = (
    RequestLine("req_1", 2, "low-risk generation", "ok 200", "0.005955"),
    RequestLine("req_2", 7, "upstream timeout", "error 504", "0"),
    RequestLine("req_3", 7, "invalid size", "no ledger row read", None),
)


def report(*steps: StepResult) -> LaunchReport:
    return LaunchReport(
        "gpt-image-2", "config.yaml", "a311707dd654", "http://tollgate:4000", "2026-11-30T00:00:00Z", steps, REQUESTS
    )


def test_a_skipped_step_does_not_fail_the_launch_and_a_failed_one_does():
    assert report(OWNERSHIP, ASSISTANT).passed
    failed = report(OWNERSHIP, ASSISTANT, COST)
    assert not failed.passed and failed.verdict.startswith("FAILED: step(s) 6 failed")


def test_spend_is_the_sum_of_the_costs_the_ledger_showed():
    assert report(OWNERSHIP).spend_usd == Decimal("0.005955")
    assert report(OWNERSHIP).spend == "$0.005955 over 3 request(s), marked purpose launch_check in the ledger"


def test_the_table_has_a_row_per_step_with_condition_result_and_evidence():
    text = render_text(report(OWNERSHIP, ASSISTANT, COST))
    assert " 1  Ownership            PASS     the route names its owner" in text
    assert "- route owner platform-team" in text
    assert " 5  Assistant flow       SKIPPED  where there is a Responses route" in text
    assert "SKIPPED: no Responses route" in text
    assert "FAIL: the actual cost $0.06 is 45.5% off | the estimate" in text
    assert text.rstrip().endswith("launch check FAILED: step(s) 6 failed; fix what they say and run the check again")


def test_markdown_keeps_each_step_in_one_table_row():
    markdown = render_markdown(report(OWNERSHIP, COST))
    rows = [line for line in markdown.splitlines() if line.startswith("| 6 |")]
    assert rows == [
        "| 6 | Cost check | within 25% | **fail**: the actual cost $0.06 is 45.5% off \\| the estimate | x |"
    ]
    assert "| `req_3` | 7 | invalid size | no ledger row read | - |" in markdown
    assert "| | | | total | 0.005955 |" in markdown


def test_json_carries_every_step_and_request():
    document = orjson.loads(render_json(report(OWNERSHIP, ASSISTANT, COST)))
    assert document["passed"] is False and document["spend_usd"] == "0.005955"
    assert [step["result"] for step in document["steps"]] == ["pass", "skipped", "fail"]
    assert document["steps"][1]["reason"] == "no Responses route"
    assert document["requests"][0] == {
        "request_id": "req_1",
        "step": 2,
        "what": "low-risk generation",
        "status": "ok 200",
        "cost_usd": "0.005955",
    }
