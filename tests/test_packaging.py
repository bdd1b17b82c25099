"""What installing Tollgate pulls in: the proxy's own needs, and extras for the rest."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project() -> dict:
    return tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {requirement.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip() for requirement in requirements}


def test_the_openai_sdk_is_an_extra_that_launch_check_names_not_a_requirement_of_the_proxy():
    extras = project()["optional-dependencies"]
    assert "openai" not in names(project()["dependencies"])  # pip leaves an app's own pinned SDK alone
    assert "openai" in names(extras["launch"])
    assert any(requirement.startswith("tollgate[") and "launch" in requirement for requirement in extras["dev"])
