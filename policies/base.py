"""What a policy is: one rule, configured in `policies:`, with one entry point that
sees the request before any upstream is called and either lets it through or
refuses it (raising `PolicyRefused` with the rule's name and what to change).

A policy that takes something for the request (a budget's reservation, a rate
limit's tokens) returns a `Hold`: released in full if a later policy refuses the
request, else settled with the request's actual cost when it ends, whatever the
outcome.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import ClassVar, Self

from providers.errors import FailureReason, ProxyError
from providers.types import Call, Surface
from providers.values import value

from .config import Built, PolicyConfig

# Called once the request has ended, with what it actually cost (USD).
Settle = Callable[[Decimal], Awaitable[None]]


@value
class Hold:
    """What a policy took for a request."""

    release: Callable[[], Awaitable[None]]  # a later policy refused the request: give it all back
    settle: Settle | None = None  # the request ran: called with its actual cost (None: keep what was taken)


@value
class Caller:
    """Who is asking: from the client key (all None when the proxy runs without keys)."""

    key_id: str | None
    team: str | None
    stage: str  # validation | production

    def owners(self) -> list[tuple[str, str]]:
        """(scope, name) of whoever a request counts against: its key, then its team."""
        return [(scope, name) for scope, name in (("key", self.key_id), ("team", self.team)) if name is not None]

    @property
    def counter_group(self) -> str:
        """The group of every counter a check of this caller changes at once (see
        policies/counters.py): its team's when it has one, which all the team's keys
        share, else its key's."""
        return f"team:{self.team}" if self.team is not None else f"key:{self.key_id}"


@value
class Preflight:
    """What a policy may look at before the upstream is called."""

    call: Call
    route: str
    upstream_model: str  # the first target's name for the route's model
    caller: Caller
    estimate_usd: Decimal | None  # on the first target's table, with the route's retries; None: unpriced
    max_request_usd: Decimal | None  # the route's cost ceiling
    longest_s: float  # the longest the request can run: every try of every target, each to its timeout


class Policy(ABC):
    name: ClassVar[str]  # also its switch under `policies:` in the config

    @classmethod
    @abstractmethod
    def from_config(cls, config: PolicyConfig, built: Built) -> Self | None:
        """This policy as the config sets it; None where it is off or has nothing to govern."""

    @abstractmethod
    async def admit(self, preflight: Preflight) -> Hold | None:
        """Let the request through (returning what it took for it, if anything), or
        raise `PolicyRefused`."""


class Rule(Policy):
    """A policy that holds nothing: a check of the request alone."""

    async def admit(self, preflight: Preflight) -> Hold | None:
        self.check(preflight)
        return None

    @abstractmethod
    def check(self, preflight: Preflight) -> None:
        """Raise `PolicyRefused`, or return."""


def image_param(call: Call, name: str) -> str:
    """Where an image setting sits in the request, for an error's `param`."""
    return f"tools[image_generation].{name}" if call.surface is Surface.RESPONSES else name


class PolicyRefused(ProxyError):
    """A policy (policies/) refused the request. The message names the rule and what to
    change; `policy` is the rule's name, recorded in the ledger and the failure metric."""

    status = 400
    error_type = "invalid_request_error"
    reason = FailureReason.POLICY_REFUSED
    code = "policy_refused"

    def __init__(
        self,
        policy: str,
        message: str,
        *,
        status: int | None = None,
        reason: FailureReason | None = None,
        retry_after_s: float | None = None,
        **kwargs,
    ) -> None:
        headers = {"retry-after": str(max(1, math.ceil(retry_after_s)))} if retry_after_s is not None else None
        super().__init__(message, headers=headers, **kwargs)
        self.policy = policy
        if status is not None:
            self.status = status
            self.error_type = {403: "permission_error", 429: "rate_limit_error"}.get(status, self.error_type)
        if reason is not None:
            self.reason = reason
