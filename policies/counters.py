"""What budgets and rate limits need from a state store: counters that several
replicas share, changed all-or-nothing. The proxy supplies the store (in memory
for one replica, Redis for several); the policies only say what to count.

Each operation is atomic across every counter it names: a request that passes
its key's limit but not its team's takes from neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

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


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `capacity` tokens, refilled at `capacity` per minute."""

    key: str
    capacity: int
    cost: int  # tokens this request takes


@dataclass(frozen=True, slots=True)
class Shortfall:
    bucket: Bucket
    wait_s: float  # until every bucket would have enough


class Counters(Protocol):
    async def reserve(self, allowances: tuple[Allowance, ...], amount: int) -> Allowance | None:
        """Add `amount` to every allowance if each stays within its limit (and none is
        already used up) and return None; else add nothing and return the first that
        would not."""

    async def adjust(self, allowances: tuple[Allowance, ...], amount: int) -> None:
        """Add `amount` (may be negative) to every allowance, whatever its limit:
        settling a reservation to what the request actually cost."""

    async def used(self, allowance: Allowance) -> int:
        """What the allowance has spent and reserved so far."""

    async def take(self, buckets: tuple[Bucket, ...]) -> Shortfall | None:
        """Take each bucket's cost from it if every bucket has enough and return None;
        else take nothing and say which bucket is short and for how long."""
