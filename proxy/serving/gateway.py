"""The gateway: everything a request needs that one config version determines —
routes, client keys, prices, policies, live providers — built together and
swapped together. The counters that policies take from, and the map of where
each conversation lives, outlive any one config.

Each request keeps the gateway that was current when it arrived, to its last byte
(`PinGateway` in app.py), and is counted on it while it runs. A reload builds the
next gateway beside the current one, reusing every provider whose settings did
not change, so its connection pool stays warm (see proxy/reload/reloader.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from policies.counters import Counters
from providers.base import Provider
from providers.registry import ProviderSettings

from ..config import Config, LoadedConfig
from ..pricing import Pricer
from ..state import ConversationMap, MemoryConversations, MemoryCounters, StateStore, conversation_ttl_s
from .auth import KeyRing
from .budget_starts import BudgetStarts
from .policy_chain import build_policies
from .routing import Router
from .simulated_upstreams import (
    InProcessSimulator,
    needs_in_process_simulator,
    providers_to_simulate,
    simulated_provider,
)


class Gateway:
    def __init__(
        self,
        loaded: LoadedConfig,
        providers: Mapping[str, Provider],
        simulated: Mapping[str, str],
        *,
        counters: Counters | None = None,
        conversations: ConversationMap | None = None,
        budget_starts: BudgetStarts | None = None,
    ) -> None:
        config = loaded.config
        self.config = config
        self.version = loaded.version
        self.router = Router(config.routes)
        self.pricer = Pricer(config)
        self.keys = KeyRing(config.keys)
        self.budget_starts = budget_starts or BudgetStarts()  # reads the ledger once the app attaches it
        self.policies = build_policies(config, counters or MemoryCounters(), self.budget_starts.spent_since)
        self.conversations = conversations or MemoryConversations(conversation_ttl_s(config.state))
        self.providers = dict(providers)
        self.simulated = dict(simulated)
        self.max_body_bytes = config.server.max_body_mb * 1024 * 1024
        self.in_flight = 0  # requests running on this gateway
        self._drained: asyncio.Event | None = None  # made only once someone waits for the count to reach 0

    def billing_owner(self, provider: str) -> str:
        return self.config.providers[provider].billing_owner

    # --- requests in flight -------------------------------------------------------------

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if not self.in_flight and self._drained is not None:
            self._drained.set()

    async def drained(self) -> None:
        """Returns once no request runs on this gateway (a retired gateway gains none)."""
        if self.in_flight:
            self._drained = asyncio.Event()
            await self._drained.wait()

    @property
    def longest_request_s(self) -> float:
        """The longest a request on this config can take: on its slowest route."""
        return max(self.router.plan(name).longest_s for name in self.config.routes)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


class GatewayFactory:
    """The one place gateways are made, at start-up and at every reload, with the same
    decisions: which providers the simulator answers for (`--simulate-upstreams`, an
    empty api_key, kind simulator), where the in-process simulator listens, and the
    counters every gateway's budgets and rate limits share (and where budgets start
    from) and the conversations map (a reload keeps them)."""

    def __init__(
        self,
        *,
        simulate_all: bool,
        counters: StateStore,
        conversations: ConversationMap | None = None,
        simulator_url: str | None = None,
    ) -> None:
        self.simulate_all = simulate_all
        self.counters = counters
        self.conversations = conversations
        self.simulator_url = simulator_url
        self.budget_starts = BudgetStarts()

    def simulated(self, config: Config) -> dict[str, str]:
        """Provider name → why the simulator answers for it."""
        return providers_to_simulate(config, simulate_all=self.simulate_all)

    def prepare(self, config: Config) -> None:
        """Start the in-process simulator if `config` needs it and none runs yet. It
        blocks until the simulator listens: call it off the event loop on a reload."""
        if self.simulator_url is None and needs_in_process_simulator(config, self.simulated(config)):
            self.simulator_url = InProcessSimulator().start()

    def build(self, loaded: LoadedConfig, previous: Gateway | None = None) -> Gateway:
        """The gateway for `loaded`; providers that `previous` built from the same
        settings are taken over as they are, pools and all."""
        config = loaded.config
        self.prepare(config)
        simulated = self.simulated(config)
        providers: dict[str, Provider] = {}
        for name, settings in config.providers.items():
            if previous is not None and _built_alike(previous, name, settings, name in simulated):
                providers[name] = previous.providers[name]
            elif name in simulated:
                providers[name] = simulated_provider(name, settings, self.simulator_url)
            else:
                providers[name] = settings.build(name)
        if self.conversations is None:
            self.conversations = MemoryConversations(conversation_ttl_s(config.state))
        return Gateway(
            loaded,
            providers,
            simulated,
            counters=self.counters,
            conversations=self.conversations,
            budget_starts=self.budget_starts,
        )


def _built_alike(previous: Gateway, name: str, settings: ProviderSettings, simulated: bool) -> bool:
    """Would `previous`'s provider `name` be built the same today? Settings compare
    field by field, secrets by value; the simulator's URL does not change."""
    return (
        name in previous.providers
        and previous.config.providers.get(name) == settings
        and (name in previous.simulated) == simulated
    )
