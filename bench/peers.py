"""The rows Tollgate is measured against, each relaying to the same nginx with one
worker: the bare Python relay (bench/relay.py, the floor for Tollgate's own stack),
Portkey's gateway (Node, from npm into bench/out/) and LiteLLM's proxy (from PyPI into
a venv of its own under bench/out/, never the project's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from proxies import Proxy
from upstream import CHAT_MODEL, IMAGE_MODEL

BENCH = Path(__file__).resolve().parent
_PORT = ("--port", "{port}")  # each start gets a free port

# --- the bare Python relay ------------------------------------------------------------------------


def relay(repo: Path, upstream_url: str) -> Proxy:
    """The project's Python and its uvicorn, uvloop, httptools and aiohttp, so that the
    relay and Tollgate differ only by what Tollgate does."""
    return Proxy(
        name="relay",
        label="bare Python relay",
        argv=[str(repo / ".venv" / "bin" / "python"), str(BENCH / "relay.py"), "--upstream", upstream_url, *_PORT],
        env=dict(os.environ),
        cwd=BENCH,
        # It relays everything, so it is ready once nginx's answer comes back through it (nginx answers GET too).
        ready_path="/v1/chat/completions",
    )


# --- Portkey's gateway ---------------------------------------------------------------------------


def portkey_home(out: Path) -> Path:
    return out / "portkey"


def _portkey_package(out: Path) -> Path:
    return portkey_home(out) / "node_modules" / "@portkey-ai" / "gateway"


def installed_portkey_version(out: Path) -> str | None:
    manifest = _portkey_package(out) / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


def ensure_portkey(out: Path, version: str, log: Path) -> str:
    """`@portkey-ai/gateway@version` from the npm registry into bench/out/portkey/,
    installed once and reused while it matches (`1.15` matches 1.15.2). Its install
    script (patch-package, for its own development) is not run. Returns the version."""
    installed = installed_portkey_version(out)
    if installed is not None and (installed == version or installed.startswith(version + ".")):
        return installed
    home = portkey_home(out)
    home.mkdir(parents=True, exist_ok=True)
    (home / "package.json").write_text('{"private": true}\n')
    with log.open("ab") as sink:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", f"@portkey-ai/gateway@{version}"],
            cwd=home,
            check=True,
            stdout=sink,
            stderr=sink,
        )
    installed = installed_portkey_version(out)
    if installed is None:
        raise RuntimeError(f"npm finished but @portkey-ai/gateway is not in {home}; see {log}")
    return installed


def portkey(out: Path, upstream_url: str) -> Proxy:
    """Portkey routes by headers: provider `openai` at a custom host (loopback is a
    trusted host by default). It sends the client's bearer key upstream, which nginx ignores."""
    return Proxy(
        name="portkey",
        label="Portkey gateway",
        argv=["node", str(_portkey_package(out) / "build" / "start-server.js"), "--port={port}", "--headless"],
        env=dict(os.environ),
        cwd=portkey_home(out),
        ready_path="/",  # "AI Gateway says hey!"
        headers={"x-portkey-provider": "openai", "x-portkey-custom-host": f"{upstream_url}/v1"},
    )


# --- LiteLLM ---------------------------------------------------------------------------------------


def litellm_venv(out: Path) -> Path:
    return out / "litellm-venv"


def installed_litellm_version(out: Path) -> str | None:
    python = litellm_venv(out) / "bin" / "python"
    if not python.exists():
        return None
    found = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def ensure_litellm(out: Path, version: str, log: Path) -> str:
    """LiteLLM's proxy in its own venv (never the project's): created once, reused while
    the installed version is the one asked for. Returns the installed version."""
    if installed_litellm_version(out) == version:
        return version
    venv = litellm_venv(out)
    with log.open("ab") as sink:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, stdout=sink, stderr=sink)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"litellm[proxy]=={version}"],
            check=True,
            stdout=sink,
            stderr=sink,
        )
    installed = installed_litellm_version(out)
    if installed is None:
        raise RuntimeError(f"pip finished but litellm does not import; see {log}")
    return installed


def litellm(out: Path, upstream_url: str, master_key: str) -> Proxy:
    """LiteLLM refuses to start without a master key, so it gets one and every row's
    requests carry it (nginx, the relay and Portkey pass it on; Tollgate knows it as a client key)."""
    home = out / "litellm"
    home.mkdir(exist_ok=True)
    config = home / "litellm.yaml"
    models = [
        {
            "model_name": model,
            "litellm_params": {
                "model": f"openai/{model}",
                "api_base": f"{upstream_url}/v1",
                "api_key": "sk-bench-upstream",
            },
        }
        for model in (CHAT_MODEL, IMAGE_MODEL)
    ]
    settings = {
        "model_list": models,
        "litellm_settings": {
            "telemetry": False,
            "turn_off_message_logging": True,
            "set_verbose": False,
            "json_logs": True,
        },
        "general_settings": {"master_key": master_key, "disable_spend_logs": True, "disable_error_logs": True},
    }
    config.write_text(json.dumps(settings, indent=2))  # JSON is YAML
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no internet: use the cost map shipped in the wheel
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",  # do not read a .env file
    }
    litellm_bin = str(litellm_venv(out) / "bin" / "litellm")
    return Proxy(
        name="litellm",
        label="LiteLLM proxy",
        argv=[litellm_bin, "--config", str(config), "--host", "127.0.0.1", "--num_workers", "1", *_PORT],
        env=env,
        cwd=home,
        ready_path="/health/readiness",
    )
