"""The rules the code keeps as it grows: imports point one way (proxy -> policies,
providers; never back), and the linter passes. Run here so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_direction_contracts_hold():
    result = run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def test_ruff_finds_nothing():
    result = run(str(BIN / "ruff"), "check", "proxy", "providers", "policies", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr
