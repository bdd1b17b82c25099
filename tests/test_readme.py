"""The README's two set-up commands stay true: CI runs exactly its test command, and
that command is the script that prepares the machine and runs pytest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    quick_start = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quick_start)


def test_the_quick_start_has_a_serve_and_a_test_command():
    serve, test = readme_commands()[:2]
    assert "pip install" in serve and "tollgate serve --config config.yaml" in serve
    assert "--simulate-upstreams" in serve and "OPENAI_API_KEY" in serve
    assert test == "scripts/test"
    script = ROOT.joinpath("scripts/test").read_text()
    assert "pip install -q -e '.[dev]'" in script and 'exec .venv/bin/python -m pytest -n 2 "$@"' in script


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    ci_lines = ROOT.joinpath(".ci/run").read_text().splitlines()
    assert test_command in ci_lines


@pytest.fixture
def world_readable_folder() -> Iterator[Path]:
    """A folder that another user (nobody) can enter: pytest's own tmp_path is root's alone."""
    folder = Path(tempfile.mkdtemp(prefix="tollgate-scripts-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def needed_programs() -> tuple[list[str], list[str]]:
    """The commands scripts/test needs and their Debian packages, from its NEEDS list."""
    block = ROOT.joinpath("scripts/test").read_text().split("NEEDS=(", 1)[1].split("\n)", 1)[0]
    pairs = [line.split('"')[1].split(":") for line in block.splitlines() if line.strip().startswith('"')]
    return [command for command, _ in pairs], [package for _, package in pairs]


def test_the_test_command_says_exactly_what_is_missing_where_it_may_not_install(world_readable_folder):
    """As a user who is not root, on a machine without the programs the tests run: one message
    naming each and its Debian package, exit 1, and nothing else done."""
    bin_folder = world_readable_folder / "bin"
    bin_folder.mkdir()
    for tool in ("bash", "dirname", "id"):  # what the script needs before its check; not even python3
        bin_folder.joinpath(tool).symlink_to(os.path.realpath(shutil.which(tool)))
    copy = world_readable_folder / "clone"
    (copy / "scripts").mkdir(parents=True)
    script = copy / "scripts" / "test"
    script.write_text(ROOT.joinpath("scripts/test").read_text())
    script.chmod(0o755)

    finished = subprocess.run(
        [shutil.which("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups", "bash", str(script), "-q"],
        env={"PATH": str(bin_folder), "HOME": str(world_readable_folder)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    message = finished.stderr.strip()
    commands, packages = needed_programs()
    assert commands[:3] == ["prometheus", "promtool", "pg_ctlcluster"]  # the list is read, not empty
    expected_packages = " ".join([*dict.fromkeys(packages), "python3-venv"])
    assert message.startswith(f"scripts/test: missing {' '.join(commands)} python3 with venv ")
    assert f"(Debian packages: {expected_packages})" in message
    assert "Run scripts/test as root" in message and f"apt-get install {expected_packages}" in message
    assert not (copy / ".venv").exists()
