"""What the steps of one launch check share: the config, the route under check,
the proxy's API, and what an earlier step hands a later one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config, Route
from .api import LaunchApi
from .pictures import Picture


@dataclass(slots=True)
class LaunchContext:
    config: Config
    route_name: str
    api: LaunchApi
    first_image: Picture | None = None  # step 2's image, which step 3 edits
    target_row: dict[str, Any] | None = None  # step 4's ledger row when it succeeded: step 6 checks its cost

    @property
    def route(self) -> Route:
        return self.config.routes[self.route_name]
