"""The `tollgate` command. Each subcommand parses its flags here and hands over
to the module that does the work; heavy imports wait until a command needs them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_CONFIG_ERROR = 2


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
    check.set_defaults(run=_check)

    simulate = commands.add_parser("simulate", help="run the simulator as a standalone OpenAI-compatible server")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=4010)
    simulate.set_defaults(run=_simulate)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .server import serve

    try:
        serve(args.config, host=args.host, port=args.port, workers=args.workers, simulate_all=args.simulate_upstreams)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .config.summary import describe
    from .configuration import load_checked

    try:
        loaded = load_checked(args.config, os.environ)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(describe(loaded))
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from providers.simulator import run

    from .server import exit_cleanly_after_drain

    exit_cleanly_after_drain()
    print(f"simulator: OpenAI-compatible upstream on http://{args.host}:{args.port}/v1", file=sys.stderr)
    run(args.host, args.port)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
