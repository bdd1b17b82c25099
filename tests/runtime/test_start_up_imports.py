"""What `tollgate serve` imports to be ready, and what its first proxied request adds.

Start-up time is mostly imports (bench/README.md, *Start-up to ready*). A proxy that
serves the issue's set-up (one `openai` provider, the SQLite ledger, metrics, client
keys with budgets, counters in memory) must not import what only the admin API, the
console, other provider kinds, other stores or other commands need; and what it
defers must not land on its first proxied request instead. Each case starts a real
`tollgate serve` (in a child process, `proxy.cli.main` as the command runs it) and
reads its `sys.modules` once `/readyz` answers 200, then after one chat completion."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

# Never needed to serve the set-up above: each has its own command, endpoint or setting.
NOT_AT_START_UP = (
    "proxy.http.admin",  # the admin API: at its first request
    "proxy.http.console.routes",  # the console's pages: at their first request
    "proxy.http.console.pages",
    "proxy.finance.ledger_queries",
    "proxy.finance.reports",
    "proxy.finance.focus",
    "proxy.finance.reconcile",
    "proxy.launch",  # `tollgate launch-check`
    "providers.litellm",  # other provider kinds
    "litellm",
    "providers.simulator",  # the simulator, when no provider is simulated
    "psycopg",  # a PostgreSQL ledger
    "redis",  # counters in Redis
    "jinja2",  # the console's templates
    "PIL",  # image checks
    "httpx",  # the upstream client is providers/http1.py
    "aiohttp",
    "openai",  # the SDK, for launch-check
)
# What the first request may still import (nothing large: it is measured by bench/).
FIRST_REQUEST_MAY_IMPORT: frozenset[str] = frozenset()

CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
CLIENT_KEY = "sk-start-up-imports-0123456789"

# The child: `tollgate serve` in-process; a thread reports sys.modules when ready and
# after one chat completion, then ends the process.
CHILD = r"""
import http.client, json, os, sys, threading, time
port, report = int(sys.argv[1]), sys.argv[2]

def probe():
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.01)
    ready = sorted(sys.modules)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    headers = {"content-type": "application/json", "authorization": "Bearer " + sys.argv[3]}
    connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
    answer = connection.getresponse()
    status = answer.status
    answer.read()
    with open(report, "w") as file:
        json.dump({"ready": ready, "after_request": sorted(sys.modules), "status": status}, file)
    os._exit(0)

threading.Thread(target=probe, daemon=True).start()
from proxy.cli import main
main(["serve", "--config", "config.yaml", "--port", str(port)])
"""


class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps(CHAT_ANSWER).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _serve_and_report(folder: Path, upstream_url: str) -> dict:
    import hashlib

    from tests.e2e.harness import free_port

    digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
    (folder / "config.yaml").write_text(
        f"""
keys:
  - {{id: app, key_sha256: {digest}, team: t, budgets: {{daily_usd: 1000}}, rate_limits: {{requests_per_minute: 1000}}}}
teams:
  t: {{budgets: {{daily_usd: 1000}}}}
server: {{host: 127.0.0.1, metrics: true, log: {{level: info, format: json}}}}
providers:
  upstream: {{kind: openai, base_url: "{upstream_url}", api_key: sk-up, billing_owner: test/upstream}}
routes:
  gpt-4o-mini: {{targets: [{{provider: upstream, model: gpt-4o-mini}}]}}
"""
    )
    report = folder / "modules.json"
    subprocess.run(
        [sys.executable, "-c", CHILD, str(free_port()), str(report), CLIENT_KEY],
        cwd=folder,
        timeout=60,
        check=True,
        capture_output=True,
    )
    return json.loads(report.read_text())


def _loaded(modules: list[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in modules)


def test_serving_imports_only_what_serving_needs_and_the_first_request_nothing_large(tmp_path, upstream):
    found = _serve_and_report(tmp_path, upstream)
    assert found["status"] == 200
    assert [package for package in NOT_AT_START_UP if _loaded(found["ready"], package)] == []
    added = set(found["after_request"]) - set(found["ready"]) - FIRST_REQUEST_MAY_IMPORT
    assert sorted(added) == []


# The ledger writer process (proxy/ledger/writer.py starts it) moves journal lines into
# the database; its memory counts in the proxy's. None of these does it use.
NOT_IN_THE_WRITER = (
    "asyncio",
    "pydantic",
    "proxy.config",
    "aiohttp",
    "starlette",
    "_hashlib",  # OpenSSL's libcrypto, ~3.5 MB: the rollup's blake2b comes without it
    "ssl",
    "subprocess",  # the parent's handle on the writer, not the writer
    "tempfile",
)


def test_the_ledger_writer_process_imports_only_what_it_uses():
    from proxy.ledger.writer import _CHILD

    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(
        subprocess.run([sys.executable, "-c", _CHILD.replace("main()", report)], capture_output=True, check=True).stdout
    )
    assert "proxy.ledger.writer_process" in modules
    assert [package for package in NOT_IN_THE_WRITER if _loaded(modules, package)] == []
