"""Tollgate installed without the openai SDK (it is the `launch` extra): the proxy
serves, and `tollgate launch-check` says which extra to install. The SDK is made
unimportable in those processes and every process they start, as if not installed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .configs import routed
from .harness import ROOT

NO_OPENAI = """
import sys


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name == "openai" or name.startswith("openai."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
"""


@pytest.fixture
def without_openai(tmp_path) -> dict[str, str]:
    """An environment whose Python processes cannot import openai (sitecustomize runs in each, children too)."""
    folder = tmp_path / "no-openai"
    folder.mkdir()
    folder.joinpath("sitecustomize.py").write_text(NO_OPENAI)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    check = subprocess.run([sys.executable, "-c", "import openai"], env={**os.environ, **env}, capture_output=True)
    assert check.returncode != 0 and b"No module named 'openai'" in check.stderr
    return env


def test_the_proxy_serves_without_the_openai_sdk(simulator, start_proxy, without_openai):
    proxy = start_proxy(routed(simulator.url), "--workers", "2", env=without_openai)
    client = proxy.client()  # this test's own process has the SDK, as an app would
    reply = client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert client.images.generate(model="gpt-image-2", prompt="a lighthouse", quality="low").data[0].b64_json
    assert proxy.stop() == 0
    assert "Traceback" not in proxy.log()


def test_launch_check_without_the_sdk_names_the_extra_to_install(tmp_path, without_openai):
    command = ["launch-check", "--config", str(ROOT / "config.yaml"), "--route", "gpt-image-2", "--simulate-upstreams"]
    finished = subprocess.run(
        [sys.executable, "-m", "proxy.cli", *command],
        cwd=tmp_path,
        env={**os.environ, **without_openai},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert "pip install 'tollgate[launch]'" in finished.stderr and "Traceback" not in finished.stderr
