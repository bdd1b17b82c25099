"""Which providers the simulator answers for, and how loudly that is said."""

from __future__ import annotations

from pathlib import Path

from proxy.config import load_config, parse_config
from proxy.serving.simulated_upstreams import banner, providers_to_simulate

ROOT = Path(__file__).resolve().parents[1]


def test_providers_with_an_empty_key_are_simulated_and_others_are_not():
    config = load_config(ROOT / "config.yaml", {"OPENAI_API_KEY": "sk-real"}).config
    assert providers_to_simulate(config, simulate_all=False) == {"acme": "its api_key is empty"}


def test_the_flag_simulates_every_provider():
    config = load_config(ROOT / "config.yaml", {"OPENAI_API_KEY": "sk-real", "ACME_API_KEY": "k"}).config
    assert providers_to_simulate(config, simulate_all=False) == {}
    assert set(providers_to_simulate(config, simulate_all=True)) == {"openai", "acme"}


def test_the_banner_names_each_simulated_provider_and_why():
    config = load_config(ROOT / "config.yaml", {"OPENAI_API_KEY": "sk-real"}).config
    text = banner(config, {"openai": "--simulate-upstreams"}, "http://127.0.0.1:1234")
    lines = text.splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"!"}
    assert "openai: --simulate-upstreams" in text and "nothing is billed" in text
    assert len({len(line) for line in lines}) == 1  # a box, whatever the names


def test_the_banner_says_where_the_simulator_listens_without_listing_it_as_a_provider():
    config = load_config(ROOT / "config.yaml", {"OPENAI_API_KEY": "sk-real"}).config
    text = banner(config, {"openai": "--simulate-upstreams", "acme": "its api_key is empty"}, "http://127.0.0.1:1234")
    entries = [line.strip("! ") for line in text.splitlines()[2:-2]]  # between the heading and the closing note
    assert [entry.split(":")[0] for entry in entries[:2]] == ["openai", "acme"]
    assert "The simulator listens on http://127.0.0.1:1234, inside this process." in text
    assert not any(entry.startswith("simulator") for entry in entries)


def test_a_standalone_simulator_is_named_by_its_address():
    config = parse_config(
        """
providers:
  sim: {kind: simulator, base_url: "http://127.0.0.1:4010/sim/v1", billing_owner: nobody}
routes:
  m: {targets: [{provider: sim, model: gpt-5.4-mini}]}
""",
        {},
    ).config
    text = banner(config, providers_to_simulate(config, simulate_all=False), None)
    assert "sim: kind: simulator, at http://127.0.0.1:4010/sim/v1" in text and "inside this process" not in text
