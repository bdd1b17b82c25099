"""Step 7: failure paths a user can recover from. An invalid size is refused with
a 400 naming `size`; an upstream that does not answer in time ends in a 504. Each
has a ledger row whose error type says why, and the failure metric counts it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from ...http.intake import TIMEOUT_HEADER
from ..api import FAILURES_METRIC, Answer
from ..context import LaunchContext
from ..step import Findings, Step
from .images import FIRST_PROMPT

INVALID_SIZE = "1000x1000"  # edges not multiples of 16: no GPT Image model makes it
TIMEOUT_S = 1  # the per-request timeout the check asks for, so a timeout takes seconds, not minutes
# Asks the simulator to hold its answer longer than that; a real upstream takes longer than 1 s anyway.
SLOW_MARKER = "[sim fault=timeout delay=30 id={id}]"


def check_failure_paths(launch: LaunchContext, found: Findings) -> None:
    api, route = launch.api, launch.route_name
    generate = api.openai.images.with_raw_response.generate

    invalid = _provoke(
        launch,
        found,
        "invalid size",
        lambda: api.send(
            7, "invalid size", generate, model=route, prompt=FIRST_PROMPT, quality="low", size=INVALID_SIZE
        ),
        status=400,
    )
    if invalid is not None and invalid.error is not None:
        found.require(invalid.error.param == "size", f"the 400 names param {invalid.error.param!r}, not 'size'")

    _provoke(
        launch,
        found,
        "upstream timeout",
        lambda: api.send(
            7,
            "upstream timeout",
            generate,
            model=route,
            prompt=f"{FIRST_PROMPT} {SLOW_MARKER.format(id=uuid.uuid4().hex[:12])}",
            quality="low",
            extra_headers={TIMEOUT_HEADER: str(TIMEOUT_S)},
        ),
        status=504,
        error_type_says="timeout",
    )


def _provoke(
    launch: LaunchContext,
    found: Findings,
    what: str,
    send: Callable[[], Answer],
    *,
    status: int,
    error_type_says: str = "",
) -> Answer | None:
    """Send a request that must fail with `status`; check its row and the failure metric."""
    api, route = launch.api, launch.route_name
    before = api.failures(route)
    answer = send()
    counted = api.failures(route) - before
    found.note(f"{what}: {answer.describe()}")
    if not found.require(
        answer.status == status,
        f"{what}: expected HTTP {status}, got {answer.status} ({answer.error_message or 'a success'})",
    ):
        return None
    row = api.row(answer.request_id or "")
    error_type = row["error_type"] if row else None
    if found.require(
        row is not None and row["status"] == "error" and bool(error_type) and error_type_says in (error_type or ""),
        f"{what}: its ledger row does not explain it (status {row['status'] if row else 'missing'}, "
        f"error_type {error_type})",
    ):
        by = f" (policy {row['policy']})" if row and row["policy"] else ""
        found.note(f"{what}: ledger error_type {error_type}{by}")
    if found.require(bool(counted), f"{what}: {FAILURES_METRIC}{{route={route!r}}} did not count it"):
        found.note(f"{what}: " + ", ".join(f"{FAILURES_METRIC}{{reason={r!r}}} +{n:g}" for r, n in counted.items()))
    return answer


FAILURE_PATHS = Step(
    7,
    "Failure paths",
    f"an invalid size ({INVALID_SIZE}) gets a 400 naming `size`; an upstream timeout (forced with a {TIMEOUT_S} s "
    "per-request timeout) gets a 504; both have ledger rows whose error type says why, and the failure metric "
    "counted them",
    check_failure_paths,
)
