"""`python -m providers.simulator [--host H] [--port P]`"""

from __future__ import annotations

import argparse

from .server import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m providers.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    arguments = parser.parse_args()
    run(arguments.host, arguments.port, arguments.log_level)


if __name__ == "__main__":
    main()
