"""`tollgate launch-check`: load the config, pick the proxy (the one at `--url`, or
one started here), run the steps against it, print the table and write the
report. Exit 0 when no step failed, 1 when one did, 2 when the check cannot run."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from ..config import Config, LoadedConfig
from ..config.checks import load_checked
from ..finance.estimate_command import makes_images
from ..ledger import utc_now
from .api import ANY_KEY, LaunchApi
from .context import LaunchContext
from .local import LocalProxyFailed, local_proxy
from .report import LaunchReport, render_json, render_markdown, render_text, requests_of
from .runner import run_steps
from .steps import STEPS

EXIT_PASSED, EXIT_FAILED = 0, 1  # and 2, CannotRun, from the command
ADMIN_KEY_ENV = "TOLLGATE_ADMIN_KEY"
API_KEY_ENV = "TOLLGATE_API_KEY"


class CannotRun(Exception):
    """The check cannot start; the message says what to change."""


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    config: str
    route: str
    simulate_upstreams: bool = False
    url: str | None = None
    report: str | None = None
    format: Literal["markdown", "json"] = "markdown"
    admin_key: str | None = None
    api_key: str | None = None


def launch_check(options: LaunchOptions, env: Mapping[str, str]) -> int:
    """Raises ConfigError or CannotRun for the command to print."""
    loaded = load_checked(options.config, env)
    check_route(loaded.config, options.route)
    report_path = _report_path(options.report)
    with _proxy(options, loaded, env) as (api, where):
        notes = []
        try:
            served = api.served_config_version()
        except httpx.TransportError as error:
            raise CannotRun(f"cannot reach Tollgate at {api.url} ({error})") from None
        if served is not None and served != loaded.version:
            notes.append(
                f"the proxy serves config version {served}, but {loaded.source} is version {loaded.version}; "
                f"the check took the route's owner, target and ceiling from {loaded.source}"
            )
        started_at = utc_now()
        launch = LaunchContext(loaded.config, options.route, api)
        steps = run_steps(launch, STEPS, lambda line: print(line, file=sys.stderr, flush=True))
        report = LaunchReport(
            options.route, loaded.source, loaded.version, where, started_at, steps, requests_of(api), tuple(notes)
        )
    sys.stdout.write(render_text(report))
    if report_path is not None:
        report_path.write_text(render_json(report) if options.format == "json" else render_markdown(report))
        print(f"report: {report_path}", file=sys.stderr)
    return EXIT_PASSED if report.passed else EXIT_FAILED


def check_route(config: Config, route: str) -> None:
    if route not in config.routes:
        raise CannotRun(f"--route: no route '{route}' in the config; its routes: {', '.join(config.routes)}")
    if not makes_images(config, route):
        raise CannotRun(
            f"--route: route '{route}' does not make images; launch-check checks an image route "
            "(one whose model is a GPT Image model or is priced per image)"
        )


def _report_path(report: str | None) -> Path | None:
    """Checked before any request is made: a typo must not cost a whole run."""
    if report is None:
        return None
    path = Path(report)
    if not path.parent.is_dir():
        raise CannotRun(f"--report: folder {path.parent} does not exist")
    return path


@contextmanager
def _proxy(options: LaunchOptions, loaded: LoadedConfig, env: Mapping[str, str]) -> Iterator[tuple[LaunchApi, str]]:
    if options.url is None:
        try:
            with local_proxy(loaded, simulate_all=options.simulate_upstreams) as local:
                where = f"started in-process at {local.url}" + (" (simulated upstreams)" if local.simulated else "")
                with _api(local.url, api_key=local.api_key, admin_key=local.admin_key) as api:
                    yield api, where
        except LocalProxyFailed as error:
            raise CannotRun(str(error)) from None
        return
    if options.simulate_upstreams:
        raise CannotRun(
            "--simulate-upstreams applies to the proxy the check starts itself; a proxy at --url uses its own "
            "upstreams (start it with `tollgate serve --simulate-upstreams`), or leave out --url"
        )
    admin_key = options.admin_key or env.get(ADMIN_KEY_ENV)
    if not admin_key:
        raise CannotRun(
            f"the check reads its requests' ledger rows from the admin API at {options.url}: give the proxy's "
            f"admin key with --admin-key or {ADMIN_KEY_ENV}"
        )
    api_key = options.api_key or env.get(API_KEY_ENV) or ANY_KEY
    with _api(options.url, api_key=api_key, admin_key=admin_key) as api:
        yield api, options.url


@contextmanager
def _api(url: str, *, api_key: str, admin_key: str) -> Iterator[LaunchApi]:
    api = LaunchApi(url, api_key=api_key, admin_key=admin_key)
    try:
        yield api
    finally:
        api.close()
