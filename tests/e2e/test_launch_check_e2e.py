"""`tollgate launch-check` as a user runs it: a real process that starts its own
Tollgate (or checks one already serving), drives it with the official SDK, and
reports each step. The example config passes against the simulator; copies of it
that each break one launch rule fail at the step that owns that rule."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from ..launch_configs import (
    EXAMPLE,
    replaced,
    with_ceiling,
    with_price_table_missing_image_input,
    without_route_owner,
    without_verified,
)

# Unset, so the example config runs on its own defaults (SQLite in the run's folder, no admin key).
_CONFIG_ENV = ("OPENAI_API_KEY", "ACME_API_KEY", "TOLLGATE_ADMIN_KEY", "TOLLGATE_API_KEY", "TOLLGATE_LEDGER_URL")


def tollgate(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name not in _CONFIG_ENV}
    return subprocess.run(
        [sys.executable, "-m", "proxy.cli", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=180,
    )


def launch_check(folder: Path, config: str, *args: str, env: dict[str, str] | None = None):
    """Run the check on `config` with a JSON report: (exit code, report, the process)."""
    (folder / "config.yaml").write_text(config)
    report = folder / "report.json"
    done = tollgate(
        folder,
        "launch-check",
        "--config",
        "config.yaml",
        "--route",
        "gpt-image-2",
        "--report",
        str(report),
        "--format",
        "json",
        *args,
        env=env,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, orjson.loads(report.read_text()), done


def outcomes(report: dict) -> dict[int, str]:
    return {step["step"]: step["result"] for step in report["steps"]}


def reason(report: dict, number: int) -> str:
    return report["steps"][number - 1]["reason"]


def test_the_example_config_passes_against_the_simulator(tmp_path):
    code, report, done = launch_check(tmp_path, EXAMPLE, "--simulate-upstreams")
    assert outcomes(report) == dict.fromkeys(range(1, 9), "pass"), done.stdout
    assert code == 0 and report["passed"] is True
    assert "launch check PASSED" in done.stdout
    assert "[7/8] Failure paths: pass" in done.stderr  # progress while it ran
    evidence = {step["step"]: "\n".join(step["evidence"]) for step in report["steps"]}
    assert "image 1024x1536 webp" in evidence[4] and "within the ceiling $0.50" in evidence[4]
    assert "HTTP 504 upstream_timeout" in evidence[7] and "reason='timeout'} +1" in evidence[7]

    # The check's requests are in the config's own ledger, marked for finance, and the report's spend is theirs.
    assert len(report["requests"]) == 7
    spend = tollgate(tmp_path, "spend", "--config", "config.yaml", "--by", "purpose,simulated", "--format", "json")
    assert orjson.loads(spend.stdout)["rows"] == [
        {"purpose": "launch_check", "simulated": True, "requests": 7, "cost_usd": report["spend_usd"]}
    ]
    assert Decimal(report["spend_usd"]) > 0


def test_a_route_without_an_owner_fails_ownership_and_the_launch_log(tmp_path):
    code, report, done = launch_check(tmp_path, without_route_owner(), "--simulate-upstreams")
    assert code == 1 and "launch check FAILED: step(s) 1, 8 failed" in done.stdout
    assert outcomes(report)[1] == "fail" and outcomes(report)[8] == "fail"
    assert reason(report, 1) == "routes.gpt-image-2.owner is not set: name the team that owns the route"
    assert "lacks the route owner" in reason(report, 8)


def test_a_reseller_without_its_verified_record_fails_ownership(tmp_path):
    # Client keys whose secrets nobody here knows: the check's own requests go in with a key made for the run.
    keys = "keys:\n  - {id: web-app, key_sha256: " + "ab" * 32 + "}\n"
    code, report, _ = launch_check(tmp_path, without_verified() + keys, "--simulate-upstreams")
    assert code == 1 and [n for n, result in outcomes(report).items() if result == "fail"] == [1]
    assert reason(report, 1).startswith("providers.acme (openai_compatible) has no `verified:` record")


def test_a_price_table_that_cannot_price_the_upstreams_usage_fails_the_step_that_met_it(tmp_path):
    code, report, _ = launch_check(tmp_path, with_price_table_missing_image_input(), "--simulate-upstreams")
    assert code == 1 and [n for n, result in outcomes(report).items() if result == "fail"] == [3, 8]
    assert reason(report, 3) == (
        "the ledger row has no cost (cost_basis unpriced): "
        "price table 'openai-negotiated' has no image_input token price for gpt-image-2"
    )
    assert "lacks a cost" in reason(report, 8)


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ("enabled", "above route 'gpt-image-2''s ceiling of $0.02 per request (`max_request_usd`)"),
        ("disabled", "it cost $0.041235, above routes.gpt-image-2.max_request_usd $0.02"),
    ],
)
def test_a_cost_ceiling_below_the_target_settings_fails_the_target_step(tmp_path, policy, says):
    """With the cost_ceiling policy on, the proxy refuses the request; off, the check still compares the cost."""
    config = with_ceiling("0.02") + f"\npolicies:\n  cost_ceiling: {{enabled: {policy == 'enabled'}}}\n"
    code, report, _ = launch_check(tmp_path, config, "--simulate-upstreams")
    assert code == 1 and [n for n, result in outcomes(report).items() if result == "fail"] == [4]
    assert says in reason(report, 4)
    assert outcomes(report)[6] == ("skipped" if policy == "enabled" else "pass")


ADMIN_KEY = "adm-launch-e2e-51f2"
CLIENT_KEY = "sk-client-launch-e2e-9c1d"
UPSTREAM_KEYS = {"OPENAI_API_KEY": "sk-upstream-openai-77aa", "ACME_API_KEY": "sk-upstream-acme-88bb"}


def test_a_running_proxy_is_checked_at_its_url_and_no_secret_is_shown(simulator, start_proxy, tmp_path):
    config = replaced(EXAMPLE, "https://api.openai.com/v1", f"{simulator.url}/openai/v1")
    config = replaced(config, "https://gw.acme.example/v1", f"{simulator.url}/acme/v1")
    config = replaced(config, "  dir: ${TOLLGATE_FILES_DIR:-tollgate-files}\n", f"  dir: {tmp_path}/files\n")
    config += """
keys:
  - id: launch-team
    key: ${LAUNCH_KEY}
"""
    env = {**UPSTREAM_KEYS, "LAUNCH_KEY": CLIENT_KEY, "TOLLGATE_ADMIN_KEY": ADMIN_KEY}
    proxy = start_proxy(config, env=env)

    code, report, done = launch_check(tmp_path, config, "--url", proxy.url, env={**env, "TOLLGATE_API_KEY": CLIENT_KEY})
    assert outcomes(report) == dict.fromkeys(range(1, 9), "pass"), done.stdout
    assert code == 0 and report["proxy"] == proxy.url and report["notes"] == []
    assert "file(s)" in "\n".join(report["steps"][7]["evidence"])  # the stored images' URLs are in the log
    shown = done.stdout + done.stderr + (tmp_path / "report.json").read_text()
    for secret in (ADMIN_KEY, CLIENT_KEY, *UPSTREAM_KEYS.values()):
        assert secret not in shown
