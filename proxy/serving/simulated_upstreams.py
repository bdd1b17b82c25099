"""Which providers the built-in simulator answers for, the providers that reach
it, and the simulator itself when it runs inside the proxy's process
(`serve --simulate-upstreams`, or a provider whose api_key is declared but empty)."""

from __future__ import annotations

from collections.abc import Mapping

from providers.base import Provider
from providers.openai import OpenAIProvider
from providers.registry import ProviderSettings

from ..config import Config
from .loopback import LoopbackServer

SIMULATED_API_KEY = "sk-tollgate-simulated"


def providers_to_simulate(config: Config, *, simulate_all: bool) -> dict[str, str]:
    """Provider name → why the simulator answers for it."""
    reasons: dict[str, str] = {}
    for name, provider in config.providers.items():
        if simulate_all:
            reasons[name] = "--simulate-upstreams"
        elif provider.kind == "simulator":
            reasons[name] = "kind: simulator"
        elif provider.key_is_missing:
            reasons[name] = "its api_key is empty"
    return reasons


def needs_in_process_simulator(config: Config, simulated: Mapping[str, str]) -> bool:
    """A simulated provider that does not name a standalone `tollgate simulate` needs one here."""
    return any(
        not (config.providers[name].kind == "simulator" and config.providers[name].base_url) for name in simulated
    )


def banner(config: Config, simulated: Mapping[str, str], simulator_url: str | None) -> str:
    """The box `serve` prints: each simulated provider and why, and where the simulator listens."""
    standalone = {
        name: config.providers[name].base_url
        for name in simulated
        if config.providers[name].kind == "simulator" and config.providers[name].base_url
    }
    lines = [
        "SIMULATED UPSTREAMS - Tollgate's simulator answers for these providers:",
        *(
            f"  {name}: {why}" + (f", at {standalone[name]}" if name in standalone else "")
            for name, why in simulated.items()
        ),
    ]
    if simulator_url and len(standalone) < len(simulated):
        lines.append(f"The simulator listens on {simulator_url}, inside this process.")
    lines.append("No real model is called and nothing is billed; their ledger rows are marked simulated.")
    width = max(len(line) for line in lines) + 4
    rule = "!" * width
    return "\n".join([rule, *(f"! {line.ljust(width - 4)} !" for line in lines), rule])


class InProcessSimulator(LoopbackServer):
    """The simulator on a loopback port, in its own thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        from providers.simulator import create_app  # only when something is simulated
        from providers.simulator.server import quiet_intentional_cuts, server_config

        super().__init__(
            lambda host, port: server_config(create_app(), host, port, log_level="warning", log_config=None),
            name="tollgate-simulator",
            host=host,
        )
        quiet_intentional_cuts()


def simulated_provider(name: str, settings: ProviderSettings, simulator_url: str | None) -> Provider:
    """The provider `name` as the simulator serves it: a standalone `tollgate simulate`, or the in-process one."""
    if settings.kind == "simulator" and settings.base_url:
        base_url = settings.base_url
    else:
        assert simulator_url, "the in-process simulator runs whenever a provider needs it"
        base_url = f"{simulator_url}/{name}/v1"  # the path names the provider, so faults can target one
    return OpenAIProvider(name, base_url, api_key=SIMULATED_API_KEY, max_connections=settings.max_connections)
