"""The `tollgate` command. Each subcommand parses its flags here and hands over
to the module that does the work; heavy imports wait until a command needs them."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .finance.ledger_commands import add_ledger_commands

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2
_SPEND_FLAGS = {"group_by": "--by", "aggregate": "--aggregate", "format": "--format focus"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_CONFIG_ERROR
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tollgate", description="An OpenAI-compatible proxy that accounts for every request."
    )
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve the proxy until SIGTERM/SIGINT")
    serve.add_argument("--config", required=True, help="path to config.yaml")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="processes (default: server.workers, else 1)")
    serve.add_argument(
        "--simulate-upstreams", action="store_true", help="send every provider's traffic to the built-in simulator"
    )
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="validate a config and summarise what it does")
    check.add_argument("--config", required=True)
    check.add_argument(
        "--strict", action="store_true", help="also refuse any route target that would be priced from the catalog"
    )
    check.set_defaults(run=_check)

    diff = commands.add_parser(
        "diff", help="what changing config OLD to NEW does to routes, providers, billing owners and price tables"
    )
    diff.add_argument("old", help="the config serving now")
    diff.add_argument("new", help="the config to change to")
    diff.set_defaults(run=_diff)

    keys = commands.add_parser("keys", help="client keys").add_subparsers(title="keys commands")
    new_key = keys.add_parser("new", help="make a client key and print the config line with its hash")
    new_key.add_argument("--id", required=True, help="the key's id, as the ledger and metrics show it")
    new_key.add_argument("--team", help="the team its spend counts against")
    new_key.set_defaults(run=_new_key)

    simulate = commands.add_parser("simulate", help="run the simulator as a standalone OpenAI-compatible server")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=4010)
    simulate.set_defaults(run=_simulate)

    estimate = commands.add_parser("estimate", help="the pre-flight cost of one request on each candidate provider")
    estimate.add_argument("--config", required=True)
    estimate.add_argument("--model", required=True, help="the route, as a client names it")
    estimate.add_argument("--size", help="WIDTHxHEIGHT (default: the route's target size, else auto)")
    estimate.add_argument("--quality", help="low, medium, high, ... (default: the route's target quality, else auto)")
    estimate.add_argument("--n", type=int, default=1, help="images to make (default 1)")
    estimate.add_argument("--prompt", default="", help="the prompt or message, counted as input tokens")
    estimate.add_argument("--input-images", type=int, default=0, help="price an edit of K 1024x1024 inputs")
    estimate.add_argument("--format", choices=("table", "json"), default="table")
    estimate.set_defaults(run=_estimate)

    spend = commands.add_parser("spend", help="spend from the ledger, grouped")
    spend.add_argument("--config", required=True)
    spend.add_argument("--since", help="ISO 8601 date or datetime (inclusive; UTC unless an offset is given)")
    spend.add_argument("--until", help="ISO 8601 date or datetime (exclusive)")
    spend.add_argument("--by", help="fields to group by, comma-separated (default: billing_owner,price_table)")
    spend.add_argument(
        "--format", choices=("table", "csv", "json", "focus"), default="table", help="focus: FOCUS cost-and-usage CSV"
    )
    spend.add_argument(
        "--aggregate", choices=("daily",), help="with --format focus: one line per day x route x provider x table"
    )
    spend.set_defaults(run=_spend)

    add_ledger_commands(commands)

    launch = commands.add_parser(
        "launch-check", help="run the launch procedure for an image route through a running Tollgate"
    )
    launch.add_argument("--config", required=True)
    launch.add_argument("--route", required=True, help="the image route to check, as clients name it")
    launch.add_argument(
        "--simulate-upstreams", action="store_true", help="the proxy the check starts sends everything to the simulator"
    )
    launch.add_argument("--url", help="a running Tollgate to check (default: start one in-process on a free port)")
    launch.add_argument("--report", help="write the report to this file (Markdown, or JSON with --format json)")
    launch.add_argument("--format", choices=("markdown", "json"), default="markdown", help="of the --report file")
    launch.add_argument("--admin-key", help="with --url: the proxy's admin key (default: $TOLLGATE_ADMIN_KEY)")
    launch.add_argument("--api-key", help="with --url: a client key (default: $TOLLGATE_API_KEY)")
    launch.set_defaults(run=_launch_check)

    reconcile = commands.add_parser(
        "reconcile", help="the ledger against a provider's own cost and usage report; exit 1 when a day is off"
    )
    reconcile.add_argument("--config", required=True)
    reconcile.add_argument("--provider", required=True, help="the provider, as the config names it")
    report = reconcile.add_mutually_exclusive_group(required=True)
    report.add_argument(
        "--file",
        action="append",
        type=Path,
        help="OpenAI organization Costs or Usage (images) API pages as JSON, or a CSV `date, model, requests, "
        "cost_usd`; repeat for several",
    )
    report.add_argument(
        "--from-api", action="store_true", help="read OpenAI's organization Costs and Usage APIs (an Admin API key)"
    )
    reconcile.add_argument(
        "--since", help="first UTC day, YYYY-MM-DD (default: the report's first; with --from-api, 7 days ago)"
    )
    reconcile.add_argument("--until", help="the UTC day after the last, YYYY-MM-DD (exclusive)")
    reconcile.add_argument("--tolerance", default="1", help="percent a day may be off before it is flagged (default 1)")
    reconcile.add_argument(
        "--admin-key-env", default="OPENAI_ADMIN_KEY", help="with --from-api: the variable holding the Admin API key"
    )
    reconcile.set_defaults(run=_reconcile)
    return parser


def _serve(args: argparse.Namespace) -> int:
    """Exit 0 after a drained stop, 1 when it cannot listen, 2 on a config error."""
    # Start-up makes ~100,000 objects that live as long as the process: scanning them
    # again and again while modules load took ~30 ms. The collector is on again once
    # the app is built (collect_less), with those objects frozen out of its sight.
    gc.disable()
    # First: the ledger writer's process loads its modules while this one loads its own.
    from .ledger.writer import discard_early, start_early

    start_early()
    try:
        from .config import ConfigError
        from .runtime.server import CannotListen, serve

        try:
            serve(
                args.config, host=args.host, port=args.port, workers=args.workers, simulate_all=args.simulate_upstreams
            )
        except ConfigError as error:
            print(error, file=sys.stderr)
            return EXIT_CONFIG_ERROR
        except CannotListen as error:
            print(error, file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    finally:
        discard_early()  # start-up failed before a ledger took the writer process (else a no-op)
        gc.enable()  # on every way out (serving turned it on already)


def _check(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .config.checks import load_checked
    from .config.summary import describe
    from .serving.policy_chain import describe_policies

    try:
        loaded = load_checked(args.config, os.environ, strict=args.strict)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(describe(loaded))
    print(describe_policies(loaded.config))
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    """Exit 0 when the two configs configure the same proxy, 1 when they differ, 2 when either is invalid."""
    from .config import ConfigError
    from .config.checks import load_checked
    from .config.diff import diff_configs, render

    loaded, errors = [], []
    for path in (args.old, args.new):
        try:
            loaded.append(load_checked(path, os.environ))
        except ConfigError as error:
            errors.append(error)
    if errors:
        print("\n".join(str(error) for error in errors), file=sys.stderr)
        return EXIT_CONFIG_ERROR
    old, new = loaded
    changes = diff_configs(old.config, new.config)
    if not changes:
        print(f"no difference: {old.source} and {new.source} configure the same proxy")
        return EXIT_OK
    print(f"{old.source} (version {old.version}) -> {new.source} (version {new.version})\n")
    print(render(changes))
    return EXIT_FAILED


def _estimate(args: argparse.Namespace) -> int:
    import orjson

    from providers.errors import ProxyError

    from .config import ConfigError
    from .config.checks import load_checked
    from .finance.estimate_command import Asked, describe, estimate

    try:
        loaded = load_checked(args.config, os.environ)  # the config as `serve` would run it
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    asked = Asked(args.model, args.size, args.quality, args.n, args.prompt, args.input_images)
    try:
        call, document = estimate(loaded.config, asked)
    except ProxyError as error:  # an unknown route is the proxy's own 404 message
        print(f"tollgate estimate: {error.message}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(orjson.dumps(document).decode() if args.format == "json" else describe(call, document))
    return EXIT_OK


def _spend(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .errors import InvalidRequest
    from .finance.focus import ledger_focus
    from .finance.reports import (
        LedgerUnavailable,
        check_focus_options,
        parse_bound,
        parse_group_by,
        read_ledger,
        read_spend,
        render,
        stranded_journals,
    )
    from .ledger import ArchivedPeriod, Filters

    try:
        loaded = load_config(args.config, os.environ)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        group_by = parse_group_by(args.by)
        since = parse_bound(args.since) if args.since else None
        until = parse_bound(args.until) if args.until else None
        check_focus_options(args.format, grouping=args.by, aggregate=args.aggregate, spelled=_SPEND_FLAGS)
    except (InvalidRequest, ValueError) as error:
        print(f"tollgate spend: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    ledger = loaded.config.ledger
    if stranded := stranded_journals(ledger.journal_dir, ledger.url):
        print(
            f"warning: {len(stranded)} journal file(s) in {ledger.journal_dir} that no running proxy is applying: "
            "their rows are not in the database yet (a proxy stopped without draining; the next start replays them)",
            file=sys.stderr,
        )
    filters, wait_s = Filters(since=since, until=until), ledger.read_wait_s
    try:
        if args.format == "focus":  # written as it is read: a month of charges never sits in memory
            daily = args.aggregate == "daily"
            read_ledger(
                ledger.url,
                lambda sql, reader: sys.stdout.writelines(ledger_focus(sql, reader, filters, daily=daily)),
                wait_s=wait_s,
            )
            return EXIT_OK
        text = render(read_spend(ledger.url, group_by, filters, wait_s=wait_s), args.format)
    except LedgerUnavailable as error:
        print(f"tollgate spend: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ArchivedPeriod as error:
        print(f"tollgate spend: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    sys.stdout.write(text if text.endswith("\n") else text + "\n")  # CSV ends its last row itself
    return EXIT_OK


def _launch_check(args: argparse.Namespace) -> int:
    from .config import ConfigError

    try:
        from .launch import CannotRun, LaunchOptions, launch_check
    except ModuleNotFoundError as error:
        if error.name != "openai":
            raise
        print(
            "tollgate launch-check: the check drives Tollgate with the official openai SDK, which is not "
            "installed here; install it with: pip install 'tollgate[launch]'",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR

    options = LaunchOptions(
        args.config,
        args.route,
        simulate_upstreams=args.simulate_upstreams,
        url=args.url,
        report=args.report,
        format=args.format,
        admin_key=args.admin_key,
        api_key=args.api_key,
    )
    try:
        return launch_check(options, os.environ)
    except ConfigError as error:
        print(error, file=sys.stderr)
    except CannotRun as error:
        print(f"tollgate launch-check: {error}", file=sys.stderr)
    return EXIT_CONFIG_ERROR


def _reconcile(args: argparse.Namespace) -> int:
    import datetime as dt

    from .config import ConfigError, load_config
    from .finance.reconcile import Reconciliation, Refused, reconcile_provider, render

    try:
        config = load_config(args.config, os.environ).config
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        asked = Reconciliation(
            provider=args.provider,
            files=args.file or [],
            from_api=args.from_api,
            since=dt.date.fromisoformat(args.since) if args.since else None,
            until=dt.date.fromisoformat(args.until) if args.until else None,
            tolerance_pct=Decimal(args.tolerance),
            admin_key=os.environ.get(args.admin_key_env, ""),
            admin_key_env=args.admin_key_env,
        )
    except (ValueError, InvalidOperation):
        print(
            "tollgate reconcile: give --since and --until as YYYY-MM-DD (whole UTC days) and --tolerance as a "
            "percentage, e.g. 1",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    try:
        heading, lines = reconcile_provider(config, asked)
    except Refused as error:
        print(f"tollgate reconcile: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(render(lines, heading, asked.tolerance_pct))
    return EXIT_FAILED if any(line.off for line in lines) else EXIT_OK


def _new_key(args: argparse.Namespace) -> int:
    from .serving.auth import new_key

    key, digest = new_key()
    team = f", team: {args.team}" if args.team else ""
    print(f"New key for '{args.id}' (shown once: give it to the app, keep it out of the config):\n")
    print(f"  {key}\n")
    print("Add under `keys:` in config.yaml (the config holds only its hash):\n")
    print(f"  - {{id: {args.id}{team}, key_sha256: {digest}}}")
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from providers.simulator import run

    from .runtime.server import exit_cleanly_after_drain

    exit_cleanly_after_drain()
    print(f"simulator: OpenAI-compatible upstream on http://{args.host}:{args.port}/v1", file=sys.stderr)
    run(args.host, args.port)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
