"""The gateway: everything a request needs that one config version determines —
routes, client keys, prices, policies, live providers — built together and
swapped together. The counters that policies take from outlive any one config."""

from __future__ import annotations

from collections.abc import Mapping

from policies.counters import Counters
from providers.base import Provider

from .auth import KeyRing
from .config import LoadedConfig
from .governance import build_policies
from .pricing import Pricer
from .routing import Router
from .state import MemoryCounters
from .upstreams import build_providers


class Gateway:
    def __init__(
        self,
        loaded: LoadedConfig,
        providers: Mapping[str, Provider],
        simulated: Mapping[str, str],
        *,
        counters: Counters | None = None,
    ) -> None:
        config = loaded.config
        self.config = config
        self.version = loaded.version
        self.router = Router(config.routes)
        self.pricer = Pricer(config)
        self.keys = KeyRing(config.keys)
        self.policies = build_policies(config, counters or MemoryCounters())
        self.providers = dict(providers)
        self.simulated = dict(simulated)
        self.max_body_bytes = config.server.max_body_mb * 1024 * 1024

    @classmethod
    def build(
        cls, loaded: LoadedConfig, *, simulated: Mapping[str, str], simulator_url: str | None, counters: Counters
    ) -> Gateway:
        providers = build_providers(loaded.config.providers, simulated=simulated, simulator_url=simulator_url)
        return cls(loaded, providers, simulated, counters=counters)

    def billing_owner(self, provider: str) -> str:
        return self.config.providers[provider].billing_owner

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
