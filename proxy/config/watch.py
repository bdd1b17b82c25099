"""`server.watch_config: true`: notice when the config file's text changes.

A thread looks at the file once a second: a stat, and a read only when the stat
changed. Polling, rather than file-system events, also sees the ways configs are
really replaced — an editor's rename over the file, a Kubernetes ConfigMap's
symlink swap — and a change counts only when the text differs from the last
text seen, so touching the file or saving it unchanged reloads nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from . import ConfigError, config_version, read_config_text

log = logging.getLogger("tollgate")

INTERVAL_S = 1.0


class ConfigWatch:
    def __init__(
        self, path: str | Path, version: str, on_change: Callable[[], None], *, interval_s: float = INTERVAL_S
    ) -> None:
        self._path = Path(path)
        self._interval_s = interval_s
        self._version = version  # of the text last seen
        self._on_change = on_change
        self._stat = self._stat_now()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tollgate-config-watch", daemon=True)

    def start(self) -> None:
        log.info("watching the config file for changes", extra={"config": str(self._path)})
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            stat = self._stat_now()
            if stat == self._stat:
                continue
            self._stat = stat
            try:
                version = config_version(read_config_text(self._path))
            except ConfigError:
                continue  # gone for a moment mid-replace; the next look sees the new file
            if version != self._version:
                self._version = version
                self._on_change()

    def _stat_now(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self._path)  # follows symlinks, so a swapped link target shows
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size
