"""A server under test (`Proxy`), and Tollgate as the issue measures it: one worker, the
SQLite ledger, metrics and the access log on, the benchmark's key as a client key with
budgets and rate limits (counters in memory). The variants each change one of those,
to show what it costs; `--workers 2` shows how Tollgate scales."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from upstream import CHAT_MODEL, IMAGE_MODEL


@dataclass(frozen=True, slots=True)
class Proxy:
    name: str  # the row's key, and the name of its log under bench/out/logs/
    label: str  # shown in results.md
    argv: list[str]  # "{port}" in an argument stands for the free port each start gets
    env: dict[str, str]
    cwd: Path
    ready_path: str
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request of the row

    def command(self, port: int) -> list[str]:
        return [argument.replace("{port}", str(port)) for argument in self.argv]

    def base_url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"


@dataclass(frozen=True, slots=True)
class Variant:
    """Tollgate with one thing changed from the issue's set-up."""

    row: str
    label: str
    change: str  # what differs, for results.md
    # "without": the row lacks a part, which costs Tollgate − row; "instead": the row swaps
    # a part for another, which costs row − Tollgate.
    compares: str = "without"
    bound_ms: float | None = None  # an earlier issue's bound on the part's added p50 at c=1
    sections: str = ""  # config sections, formatted with url and prefix
    metrics: bool = True
    access_log: bool = True
    governed: bool = True  # the client key with budgets and rate limits


TOLLGATE = Variant("tollgate", "Tollgate", "the issue's set-up")
VARIANTS = {
    variant.row: variant
    for variant in (
        Variant(
            "tollgate-no-ledger",
            "Tollgate, ledger off",
            "`ledger.enabled: false`",
            bound_ms=0.5,  # issue 3
            sections="ledger: {{enabled: false}}\n",
        ),
        Variant(
            "tollgate-postgres",
            "Tollgate, PostgreSQL ledger",
            "the ledger in the local PostgreSQL",
            compares="instead",
            sections="ledger: {{url: {url}}}\n",
        ),
        Variant("tollgate-no-metrics", "Tollgate, metrics off", "`server.metrics: false`", bound_ms=0.2, metrics=False),
        Variant(
            "tollgate-no-access-log", "Tollgate, access log off", "`server.log.access_log: false`", access_log=False
        ),
        Variant(
            "tollgate-open",
            "Tollgate, no keys",
            "no `keys:` (open: no key check, budgets or rate limits)",
            bound_ms=0.3,  # issue 5
            governed=False,
        ),
        Variant(
            "tollgate-redis",
            "Tollgate, counters in Redis",
            "budgets and rate limits in the local Redis",
            compares="instead",
            sections="state: {{url: {url}, prefix: {prefix}}}\n",
        ),
    )
}

POSTGRES = "postgresql://postgres@127.0.0.1:5432"  # the PostgreSQL ledger variant makes a database here
REDIS_URL = "redis://127.0.0.1:6379/0"  # the counters of the Redis variant (keys under its prefix, which expire)


class StoreUnavailable(Exception):
    """The store a variant needs is not there."""


@contextmanager
def variant_store(variant: Variant) -> Iterator[str]:
    """The URL of the store a variant uses: a PostgreSQL database made for it and dropped
    after, the local Redis, or none ("")."""
    if variant.row == "tollgate-redis":
        yield REDIS_URL
        return
    if variant.row != "tollgate-postgres":
        yield ""
        return
    import psycopg

    database = f"tollgate_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
    except psycopg.Error as unavailable:
        raise StoreUnavailable(str(unavailable)) from unavailable
    try:
        yield f"{POSTGRES}/{database}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# The benchmark's key, in a team, with budgets and rate limits far above what a run spends
# or sends, so that every request passes every check (the key's hash, rate limits, a budget
# reservation and its settlement).
_GOVERNED = """keys:
  - {{id: bench, key_sha256: {key_sha256}, team: bench,
     budgets: {{daily_usd: 1000000, monthly_usd: 1000000}},
     rate_limits: {{requests_per_minute: 100000000, images_per_minute: 100000000}}}}
teams:
  bench: {{budgets: {{daily_usd: 1000000}}, rate_limits: {{requests_per_minute: 100000000}}}}
"""


def tollgate(
    repo: Path,
    out: Path,
    upstream_url: str,
    api_key: str,
    source: Path | None = None,
    *,
    variant: Variant = TOLLGATE,
    url: str = "",
    workers: int = 1,
) -> Proxy:
    """Tollgate from the project's venv: the working tree (the editable install), or the
    files of `source` (a commit exported by run.py), which PYTHONPATH puts first. `url`:
    the PostgreSQL or Redis a variant uses. `workers` > 1 is `tollgate serve --workers N`.
    Raises RuntimeError when `tollgate check` refuses the config (an older revision)."""
    name = variant.row if workers == 1 else f"{variant.row}-{workers}-workers"
    label = variant.label if workers == 1 else f"{variant.label}, {workers} workers"
    key_sha256 = hashlib.sha256(api_key.encode()).hexdigest()
    sections = (_GOVERNED if variant.governed else "") + variant.sections
    sections = sections.format(url=url, key_sha256=key_sha256, prefix=f"tollgate-bench-{key_sha256[:8]}")
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    config = out / f"{name}.yaml"
    config.write_text(
        f"""# Generated by bench/run.py: one provider (the nginx upstream), a route per model.
# The ledger keeps its defaults (SQLite and its journal, relative to the working
# directory, bench/out/{name}-state/, emptied at each run): it is part of a request's
# cost. The access log goes to stderr, which the benchmark writes to a file.
{sections}
server:
  host: 127.0.0.1
  workers: 1
  metrics: {"true" if variant.metrics else "false"}
  log: {{level: info, format: json, access_log: {"true" if variant.access_log else "false"}}}
providers:
  upstream:
    kind: openai
    base_url: {upstream_url}/v1
    api_key: sk-bench-upstream
    billing_owner: bench/nginx
routes:
  {CHAT_MODEL}:
    targets: [{{provider: upstream, model: {CHAT_MODEL}}}]
  {IMAGE_MODEL}:
    targets: [{{provider: upstream, model: {IMAGE_MODEL}}}]
"""
    )
    state = out / f"{name}-state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    compile_bytecode(repo, source or repo)
    check = subprocess.run(
        [str(tollgate_bin(repo)), "check", "--config", str(config)], capture_output=True, text=True, env=env, cwd=state
    )
    if check.returncode != 0:
        raise RuntimeError(f"tollgate check refused the generated config:\n{check.stderr}")
    argv = [str(tollgate_bin(repo)), "serve", "--config", str(config), "--port", "{port}"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return Proxy(name=name, label=label, argv=argv, env=env, cwd=state, ready_path="/readyz")


def compile_bytecode(repo: Path, source: Path) -> None:
    """Tollgate's modules compiled to bytecode, as installing it (pip, the Docker image)
    does and as every other row's packages are: with PYTHONDONTWRITEBYTECODE set (as on
    this project's machines) an editable install would otherwise compile them at every
    start-up, which the start-up time would count."""
    packages = [str(source / package) for package in ("proxy", "providers", "policies")]
    python = repo / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "compileall", "-q", *packages], check=True, capture_output=True)


def tollgate_bin(repo: Path) -> Path:
    return repo / ".venv" / "bin" / "tollgate"
