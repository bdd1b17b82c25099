"""A step of the launch check: what it proves (its pass condition), and what one
run of it found: pass, fail or skipped with the reason, and the evidence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .context import LaunchContext

Outcome = Literal["pass", "fail", "skipped"]


class Skip(Exception):
    """The step does not apply, or cannot run without what an earlier step failed to give."""


@dataclass(slots=True)
class Findings:
    """What a step gathers as it runs: evidence, and every condition it found unmet."""

    evidence: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, evidence: str) -> None:
        self.evidence.append(evidence)

    def require(self, met: bool, problem: str) -> bool:
        """Record `problem` unless `met`; return `met`, so a step can stop where the rest depends on it."""
        if not met:
            self.problems.append(problem)
        return met


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    title: str
    condition: str  # the pass condition, as the report prints it
    check: Callable[[LaunchContext, Findings], None]  # raises Skip when it cannot apply


@dataclass(frozen=True, slots=True)
class StepResult:
    number: int
    title: str
    condition: str
    outcome: Outcome
    reason: str = ""  # why it failed or was skipped
    evidence: tuple[str, ...] = ()
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "title": self.title,
            "condition": self.condition,
            "result": self.outcome,
            "reason": self.reason,
            "evidence": list(self.evidence),
            "seconds": round(self.seconds, 3),
        }
