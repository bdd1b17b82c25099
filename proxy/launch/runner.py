"""Running the steps in order, with progress as they go. A step that breaks ends
as a failure with its reason, and the steps after it still run: the report shows
everything that is wrong with the route, not only the first thing."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx
import openai

from .api import ProxyUnreadable
from .context import LaunchContext
from .step import Findings, Outcome, Skip, Step, StepResult

Progress = Callable[[str], None]


def run_steps(launch: LaunchContext, steps: Sequence[Step], progress: Progress) -> tuple[StepResult, ...]:
    results = []
    for step in steps:
        where = f"[{step.number}/{len(steps)}] {step.title}"
        progress(f"{where} ...")
        started = time.perf_counter()
        found = Findings()
        outcome, reason = _run(step, launch, found)
        seconds = time.perf_counter() - started
        progress(f"{where}: {outcome}{f' - {reason}' if reason else ''} ({seconds:.1f} s)")
        results.append(
            StepResult(step.number, step.title, step.condition, outcome, reason, tuple(found.evidence), seconds)
        )
    return tuple(results)


def _run(step: Step, launch: LaunchContext, found: Findings) -> tuple[Outcome, str]:
    try:
        step.check(launch, found)
    except Skip as skip:
        return "skipped", str(skip)
    except ProxyUnreadable as problem:
        found.problems.append(str(problem))
    except openai.APIStatusError as error:  # an answer the step did not expect to fail (e.g. the estimate)
        found.problems.append(f"HTTP {error.status_code}: {error.message}")
    except (openai.APIConnectionError, httpx.TransportError) as error:
        found.problems.append(f"could not reach Tollgate at {launch.api.url}: {error}")
    except Exception as error:  # the check's own fault: say so, and let the other steps report
        found.problems.append(f"the step stopped on an unexpected {type(error).__name__}: {error}")
    return ("fail", "; ".join(found.problems)) if found.problems else ("pass", "")
