"""Which providers the simulator answers for, and how loudly that is said."""

from __future__ import annotations

from pathlib import Path

from proxy.config import load_config
from proxy.simulation import banner, providers_to_simulate

ROOT = Path(__file__).resolve().parents[1]


def test_providers_with_an_empty_key_are_simulated_and_others_are_not():
    config = load_config(ROOT / "config.yaml", {"OPENAI_API_KEY": "sk-real"}).config
    assert providers_to_simulate(config, simulate_all=False) == {"acme": "its api_key is empty"}


def test_the_flag_simulates_every_provider():
    config = load_config(ROOT / "config.yaml", {"OPENAI_API_KEY": "sk-real", "ACME_API_KEY": "k"}).config
    assert providers_to_simulate(config, simulate_all=False) == {}
    assert set(providers_to_simulate(config, simulate_all=True)) == {"openai", "acme"}


def test_the_banner_names_each_simulated_provider_and_why():
    text = banner({"openai": "--simulate-upstreams"}, "http://127.0.0.1:1234")
    lines = text.splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"!"}
    assert "openai: --simulate-upstreams" in text and "nothing is billed" in text
    assert len({len(line) for line in lines}) == 1  # a box, whatever the names
