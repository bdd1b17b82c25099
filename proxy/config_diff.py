"""What a config change does: `tollgate diff OLD NEW`, and the settings a reload
cannot change while serving."""

from __future__ import annotations

from typing import Any

from .config import Config

# Read once at start-up (the listening socket, the processes, the ledger, the state
# store, the file store, logging set-up): a reload takes the rest and says these wait.
RESTART_ONLY = (
    "server.host",
    "server.port",
    "server.workers",
    "server.drain_timeout_s",
    "server.watch_config",
    "server.log.level",
    "server.log.format",
    "ledger",
    "state",
    "files",
)


def restart_only_changes(old: Config, new: Config) -> list[str]:
    return [path for path in RESTART_ONLY if _at(old, path) != _at(new, path)]


def _at(config: Config, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value
