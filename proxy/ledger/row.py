"""The ledger row: one per client request, every field the finance
reports, budgets and reconciliation read.

A row also lists its charges: what each provider bills for the request, each on
that provider's own table. Usually one charge (the provider that answered); a
failed attempt that its provider bills adds one more, under that provider's
billing owner, so no charge is ever priced on another provider's table.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

# client_closed: the client hung up on a stream before it was complete.
Status = Literal["started", "ok", "error", "abandoned", "client_closed"]
# partial_estimate: a closed stream's estimated input and the output relayed before it closed.
CostBasis = Literal["usage", "estimate", "partial_estimate", "unpriced"]
ReviewStatus = Literal["not_required", "pending", "approved", "rejected"]
NANO = Decimal("0.000000001")  # costs are stored as integer nano-dollars: exact sums in SQL


def to_nano(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount.quantize(NANO) / NANO)


def from_nano(nano: int | None) -> Decimal | None:
    return None if nano is None else (Decimal(nano) * NANO).normalize()


def answers(index: int, charge_provider: str | None, row_provider: str | None, cost_lines: list) -> bool:
    """Whether a row's charge is its answer's own: the first, on the provider that answered,
    priced from the answer's cost lines (else a billed failed attempt, or an estimate)."""
    return index == 0 and bool(cost_lines) and charge_provider == row_provider


def priced(cost_lines: list[dict[str, Any]], *, answered: bool) -> tuple[int, str]:
    """What a charge's table priced, in what unit: the images where it prices per image,
    else the tokens; a charge not priced from an answer is one request."""
    if not answered:
        return 1, "Requests"
    images = [line for line in cost_lines if str(line.get("item")).startswith("image ")]
    # .get: the writer reads this from every journaled row, and one odd line must not stop it
    return sum(int(line.get("quantity") or 0) for line in images or cost_lines), "Images" if images else "Tokens"


def utc_now() -> str:
    """Now, as `2026-11-30T12:00:00.123456Z`. Every request takes two or three: the part
    up to the second is formatted once a second (a quarter of datetime's cost)."""
    global _second
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    if seconds != _second[0]:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{micros:06d}Z"


_second: tuple[int, str] = (-1, "")


# A row and its charges keep their fields in a __dict__, not in slots: orjson writes a
# dataclass's __dict__ as it stands, and reads a slotted one field by field, 3.5x the
# time (two rows journaled per request). Only the fields are ever set (see LedgerRow).


@dataclass
class Charge:
    provider: str
    billing_owner: str
    price_table: str | None
    price_source: str | None
    cost_nanousd: int
    cost_basis: CostBasis
    # The vendor's list price for the same usage, on the official table named; None where
    # no official table prices it (a model only a reseller or the catalog lists, a billed
    # failed attempt, a row abandoned mid-request).
    list_cost_nanousd: int | None = None
    list_price_table: str | None = None

    @property
    def listed_nanousd(self) -> int:
        """The list cost, or where there is none the charge itself: FOCUS's rule for ListCost,
        so markup against list is exact where a list price exists and 0 where none does."""
        return self.cost_nanousd if self.list_cost_nanousd is None else self.list_cost_nanousd


@dataclass
class LedgerRow:
    request_id: str
    created_at: str
    surface: str
    status: Status = "started"
    finished_at: str | None = None
    http_status: int | None = None
    error_type: str | None = None
    key_id: str | None = None
    team: str | None = None
    route: str | None = None
    route_owner: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    billing_owner: str | None = None
    price_table: str | None = None
    price_source: str | None = None
    cost_nanousd: int | None = None
    estimated_cost_nanousd: int | None = None
    cost_basis: CostBasis | None = None
    input_text_tokens: int | None = None
    input_image_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_text_tokens: int | None = None
    output_image_tokens: int | None = None
    images: int | None = None
    size: str | None = None
    quality: str | None = None
    output_format: str | None = None
    prompt_version: str | None = None
    file_urls: list[str] = field(default_factory=list)
    review_status: ReviewStatus = "not_required"
    review: dict[str, Any] | None = None  # who reviewed, when, and their note
    attempts: list[dict[str, Any]] = field(default_factory=list)
    upstream_request_id: str | None = None
    latency_ms: float | None = None
    simulated: bool = False
    # what the proxy adds for operators
    config_version: str | None = None
    purpose: str | None = None  # e.g. launch_check
    policy: str | None = None  # the policy that refused the request, if one did
    cost_lines: list[dict[str, Any]] = field(default_factory=list)  # where the cost came from
    charges: list[Charge] = field(default_factory=list)
    owner: str | None = None  # the journal that wrote it: who may declare it abandoned

    @property
    def day(self) -> str:
        return self.created_at[:10]

    def abandon(self) -> None:
        """Its process died mid-request: the upstream may have billed, so the estimate
        stands in for the cost, charged to the provider it was sent to."""
        self.status = "abandoned"
        self.finished_at = utc_now()
        self.error_type = "abandoned"
        self.cost_basis = "estimate" if self.estimated_cost_nanousd is not None else "unpriced"
        self.cost_nanousd = self.estimated_cost_nanousd
        estimate = self.estimated_cost_nanousd
        if self.provider and estimate is not None:
            owner = self.billing_owner or ""
            self.charges = [Charge(self.provider, owner, self.price_table, self.price_source, estimate, "estimate")]

    def record(self) -> dict[str, Any]:
        """The row as stored: a flat mapping, JSON-ready."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LedgerRow:
        charges = [Charge(**charge) for charge in record.get("charges") or ()]
        return cls(**{**record, "charges": charges})

    def public(self) -> dict[str, Any]:
        """The row as the admin API shows it: dollars as decimal strings, no internals."""
        shown = {key: value for key, value in self.record().items() if key not in ("owner", "charges")}
        shown["cost_usd"] = _usd(shown.pop("cost_nanousd"))
        shown["estimated_cost_usd"] = _usd(shown.pop("estimated_cost_nanousd"))
        shown["charges"] = [
            {
                **{k: v for k, v in asdict(charge).items() if not k.endswith("_nanousd")},
                "cost_usd": _usd(charge.cost_nanousd),
                "list_cost_usd": _usd(charge.list_cost_nanousd),
            }
            for charge in self.charges
        ]
        return shown


def _usd(nano: int | None) -> str | None:
    amount = from_nano(nano)
    return None if amount is None else format(amount, "f")
