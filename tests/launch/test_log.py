"""Step 8: what the launch rules ask of each ledger row the check wrote, and the
gaps named one by one."""

from __future__ import annotations

from proxy.config import parse_config
from proxy.launch.api import PROMPT_VERSION, PURPOSE, Sent
from proxy.launch.context import LaunchContext
from proxy.launch.steps.launch_log import missing

from ..launch_configs import EXAMPLE
from ..rows import OPENAI, charged_row

LAUNCH = LaunchContext(parse_config(EXAMPLE, {}).config, "gpt-image-2", api=None)  # type: ignore[arg-type]
SENT = Sent(2, "low-risk generation", "req_1")


def row(*, charges=((OPENAI, 5_955_000),), **fields) -> dict:
    complete = {
        "route_owner": "platform-team",
        "upstream_model": "gpt-image-2",
        "prompt_version": PROMPT_VERSION,
        "purpose": PURPOSE,
        "review_status": "pending",
        "images": 1,
        "http_status": 200,
    }
    return charged_row("req_1", "2026-11-30T00:00:00Z", list(charges), **{**complete, **fields}).public()


def test_a_complete_row_lacks_nothing():
    assert missing(row(), SENT, LAUNCH, stores_files=False) == []


def test_each_gap_is_named():
    gaps = missing(
        row(route_owner=None, prompt_version=None, purpose=None, review_status="not_required", charges=()),
        SENT,
        LAUNCH,
        stores_files=True,
    )
    assert gaps == [
        "the route owner",
        "the prompt version launch-check/1 (it has None)",
        "purpose launch_check (it has None)",
        "a cost",
        "review (route gpt-image-2 has review: required; the row says not_required)",
        "a file URL (files: is configured)",
    ]


def test_a_failed_request_needs_no_file_and_no_review():
    failed = row(status="error", http_status=504, images=None, review_status="not_required")
    assert missing(failed, SENT, LAUNCH, stores_files=True) == []


def test_a_stored_image_has_its_url():
    assert missing(row(file_urls=["/files/req_1-0.png"]), SENT, LAUNCH, stores_files=True) == []
