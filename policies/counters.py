"""What budgets and rate limits need from a state store: counters that several
replicas share, changed all-or-nothing. The proxy supplies the store (in memory
for one replica, Redis for several); the policies only say what to count.

Each operation is atomic across every counter it names: a request that passes
its key's limit but not its team's takes from neither. The counters one operation
names share a `group` (the caller's team, else its key), so a store that shards
(Redis Cluster) can keep them together.

A budget's counter starts, in each period, from what its owner already spent
then (the ledger knows): a store that has no counter for an allowance whose
starting point is not given says so (`Unstarted`) rather than count from zero.

A budget's reservation is a thing with an id and an expiry: settling it is
idempotent, and a reservation nobody settles (its process died) lapses. Writes
that give something back (`settle`, `give_back`) always land: a store that
cannot reach its backend keeps them and retries until it can. Checks (`reserve`,
`take`) cannot wait: they raise `StateUnavailable`, and the request is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from providers.errors import FailureReason, ProxyError
from providers.values import value

NANO = Decimal("0.000000001")


def to_nano(usd: Decimal) -> int:
    """Dollars as integer nano-dollars, the unit counters add exactly (the ledger's too)."""
    return int((usd / NANO).to_integral_value(ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class Allowance:
    """A budget for one period: `used` (spent and reserved) may reach `limit`, no further."""

    key: str  # unique per owner and period, e.g. "budget:team:growth:day:2026-11-30"
    limit: int  # nano-dollars
    ttl_s: int  # forget the counter once its period is over
    group: str = ""  # changed together with the other counters of this group, e.g. "team:growth"
    # What the counter starts from when the store has none (a new period, a store that
    # lost its data); None: not known yet, so `reserve` answers `Unstarted` instead.
    starts_at: int | None = 0


@value
class Reservation:
    """What one request holds of its allowances while it runs."""

    id: str  # unique per request: settling the same id again changes nothing
    amount: int  # nano-dollars
    expires_s: float  # unless settled sooner, the hold lapses this long after it was made


@dataclass(frozen=True, slots=True)
class OverLimit:
    """Why a reservation was refused: the first allowance it would have passed."""

    allowance: Allowance
    used: int  # what that allowance had spent and reserved, when it refused


@dataclass(frozen=True, slots=True)
class Unstarted:
    """Why nothing was reserved: the store has no counter for these allowances, and
    their starting points were not given. Reserve again with each `starts_at` set."""

    allowances: tuple[Allowance, ...]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `capacity` tokens, refilled at `capacity` per minute."""

    key: str
    capacity: int
    cost: int  # tokens this request takes
    group: str = ""  # as an allowance's


@dataclass(frozen=True, slots=True)
class Shortfall:
    bucket: Bucket
    wait_s: float  # until every bucket would have enough


class StateUnavailable(ProxyError):
    """The store cannot be reached, so budgets and rate limits cannot be checked:
    the request is refused rather than admitted unchecked."""

    status = 503
    error_type = "server_error"
    reason = FailureReason.STATE_UNAVAILABLE
    code = "state_unavailable"

    def __init__(self, cause: str) -> None:
        super().__init__(
            "Tollgate cannot reach its state store, which holds the budgets and rate limits, so it cannot "
            f"admit this request ({cause}). Retry shortly; operators: check the store at `state.url`.",
            headers={"retry-after": "1"},
        )
        self.cause = cause  # what failed, e.g. the client library's error class: no address, no secret


class Counters(Protocol):
    async def reserve(
        self, allowances: tuple[Allowance, ...], reservation: Reservation
    ) -> OverLimit | Unstarted | None:
        """Hold `reservation.amount` of every allowance if each stays within its limit (and
        none is already used up) and return None; else hold nothing and say which would
        not. Holds that have lapsed are dropped first. Reserving an id already held
        changes nothing.

        An allowance without a counter in the store starts at its `starts_at`, unless
        that is None: then nothing is held, and `Unstarted` names every such allowance.
        A counter that exists is never reset: the first to start it wins."""

    async def settle(self, allowances: tuple[Allowance, ...], reservation_id: str, actual: int) -> None:
        """Replace the reservation's hold by what the request actually cost, whatever the
        limit. Exactly once: a reservation already settled is left alone, one that lapsed
        is still charged its actual cost."""

    async def used(self, allowance: Allowance) -> int:
        """What the allowance has spent and holds for requests in flight."""

    async def take(self, buckets: tuple[Bucket, ...]) -> Shortfall | None:
        """Take each bucket's cost from it if every bucket has enough and return None;
        else take nothing and say which bucket is short and for how long."""

    async def give_back(self, buckets: tuple[Bucket, ...]) -> None:
        """Return what `take` took (a later policy refused the request), each bucket
        capped at its capacity."""
