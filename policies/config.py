"""The parts of `config.yaml` the policies read, as the policies see them. The
proxy's config has this shape; the policies never import it (the proxy composes
the policies, not the other way round). Each policy builds itself from it
(`from_config`); what it is built with besides is `Built`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from .counters import Counters

if TYPE_CHECKING:  # budgets builds itself from this module's protocols
    from .budgets import SpentSince


class Toggle(Protocol):
    enabled: bool


class ImageParameterSettings(Toggle, Protocol):
    max_n: int
    max_input_images: int
    max_input_mb: int
    max_input_megapixels: int


class PolicyToggles(Protocol):
    """`policies:`: each rule on or off."""

    responses_model_guard: Toggle
    image_parameters: ImageParameterSettings
    launch_stage: Toggle
    cost_ceiling: Toggle
    rate_limits: Toggle
    budgets: Toggle


class BudgetSettings(Protocol):
    daily_usd: Decimal | None
    monthly_usd: Decimal | None


class RateLimitSettings(Protocol):
    requests_per_minute: int | None
    images_per_minute: int | None


class OwnerSettings(Protocol):
    """A team: what it may spend and how fast."""

    budgets: BudgetSettings | None
    rate_limits: RateLimitSettings | None


class KeySettings(OwnerSettings, Protocol):
    id: str
    stage: str  # validation | production


class RouteSettings(Protocol):
    max_request_usd: Decimal | None


class PolicyConfig(Protocol):
    policies: PolicyToggles
    keys: Sequence[KeySettings] | None  # None: the proxy is open
    teams: Mapping[str, OwnerSettings]
    routes: Mapping[str, RouteSettings]


@dataclass(frozen=True, slots=True)
class Built:
    """What a policy is built with besides the config: the store of its counters, and
    where budgets start in a period (the ledger's spend; None: from zero)."""

    counters: Counters
    spent_since: SpentSince | None = None
