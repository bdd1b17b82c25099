"""The README's two set-up commands stay true: CI runs exactly its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    quick_start = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quick_start)


def test_the_quick_start_has_a_serve_and_a_test_command():
    serve, test = readme_commands()[:2]
    assert "pip install" in serve and "tollgate serve --config config.yaml" in serve
    assert "--simulate-upstreams" in serve and "OPENAI_API_KEY" in serve
    assert "pip install" in test and "pytest" in test


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    ci_lines = ROOT.joinpath(".ci/run").read_text().splitlines()
    assert test_command in ci_lines
