"""The runner: each step ends as pass, fail (with every unmet condition) or skipped,
progress is shown as it goes, and a step that breaks does not stop the others."""

from __future__ import annotations

from proxy.launch.api import ProxyUnreadable
from proxy.launch.context import LaunchContext
from proxy.launch.runner import run_steps
from proxy.launch.step import Findings, Skip, Step


def passes(launch: LaunchContext, found: Findings) -> None:
    found.note("looked")
    found.require(True, "never shown")


def fails_twice(launch: LaunchContext, found: Findings) -> None:
    found.require(False, "first problem")
    found.note("evidence kept")
    found.require(False, "second problem")


def skips(launch: LaunchContext, found: Findings) -> None:
    raise Skip("does not apply")


def cannot_read(launch: LaunchContext, found: Findings) -> None:
    raise ProxyUnreadable("the admin API refused the admin key")


def breaks(launch: LaunchContext, found: Findings) -> None:
    raise KeyError("cost_usd")


STEPS = [
    Step(1, "Passes", "c1", passes),
    Step(2, "Fails", "c2", fails_twice),
    Step(3, "Skips", "c3", skips),
    Step(4, "Unreadable", "c4", cannot_read),
    Step(5, "Breaks", "c5", breaks),
]


def test_every_step_runs_and_ends_with_its_outcome_and_reason():
    progress: list[str] = []
    launch = LaunchContext(config=None, route_name="gpt-image-2", api=None)  # type: ignore[arg-type]
    results = run_steps(launch, STEPS, progress.append)
    assert [(result.outcome, result.reason) for result in results] == [
        ("pass", ""),
        ("fail", "first problem; second problem"),
        ("skipped", "does not apply"),
        ("fail", "the admin API refused the admin key"),
        ("fail", "the step stopped on an unexpected KeyError: 'cost_usd'"),
    ]
    assert results[0].evidence == ("looked",) and results[1].evidence == ("evidence kept",)
    assert progress[0] == "[1/5] Passes ..." and progress[1].startswith("[1/5] Passes: pass (")
    assert progress[3].startswith("[2/5] Fails: fail - first problem; second problem (")
    assert len(progress) == 10
