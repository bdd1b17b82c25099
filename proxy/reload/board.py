"""How the workers of one `tollgate serve --workers N` reload together: a folder they
share, made by the supervisor, holding the config text they should all serve.

The worker that reloads (after `POST /admin/reload`, or the SIGHUP the supervisor
passes to it) validates the file and posts its text with the next generation
number; every other worker notices the new generation, applies that same text and
reports back, so the one that reloaded can answer only when all of them serve it.
A worker that starts later (the supervisor replaces one that died) starts from the
posted text too, never from a file that a refused reload left broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

ENV_FOLDER = "TOLLGATE_RELOAD_DIR"
_POSTED = "posted.json"
_REPORT_PREFIX = "worker-"


@dataclass(frozen=True, slots=True)
class Posted:
    generation: int
    version: str
    text: str  # the file as written (`${VAR}` not expanded): no secret is copied here


class ReloadBoard:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._seen: tuple[int, int] | None = None  # the posted file's (inode, mtime) when last read

    @classmethod
    def create(cls) -> ReloadBoard:
        return cls(tempfile.mkdtemp(prefix="tollgate-reload-"))  # readable by this user only

    # --- the config every worker should serve ---------------------------------------------

    def post(self, text: str, version: str) -> int:
        """Post `text` as the next generation, and return its number."""
        with open(self.folder / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two workers posting at once each get their own number
            generation = self.read().generation + 1 if (self.folder / _POSTED).exists() else 1
            _write_atomically(
                self.folder / _POSTED, orjson.dumps({"generation": generation, "version": version, "text": text})
            )
        return generation

    def read(self) -> Posted:
        return Posted(**orjson.loads((self.folder / _POSTED).read_bytes()))

    def newer_than(self, generation: int) -> Posted | None:
        """The posted config if its generation is past `generation`. Costs one stat
        unless something was posted since the last look (each post is a new file)."""
        stat = os.stat(self.folder / _POSTED)
        seen = (stat.st_ino, stat.st_mtime_ns)
        if seen == self._seen:
            return None
        self._seen = seen
        posted = self.read()
        return posted if posted.generation > generation else None

    # --- which worker serves what -----------------------------------------------------------

    def report(self, generation: int, version: str) -> None:
        """This worker serves `version`, as of `generation`."""
        _write_atomically(self._report_path(os.getpid()), orjson.dumps({"generation": generation, "version": version}))

    def withdraw(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._report_path(os.getpid()).unlink()

    def reports(self) -> dict[int, tuple[int, str]]:
        """Live worker pid → (generation, version); a dead worker's report is removed."""
        found = {}
        for path in self.folder.glob(f"{_REPORT_PREFIX}*.json"):
            pid = int(path.stem.removeprefix(_REPORT_PREFIX))
            if not _alive(pid):
                path.unlink(missing_ok=True)
                continue
            with contextlib.suppress(FileNotFoundError):  # its worker withdrew it just now
                report = orjson.loads(path.read_bytes())
                found[pid] = (report["generation"], report["version"])
        return found

    async def confirm(self, generation: int, *, timeout_s: float) -> dict[int, tuple[int, str]]:
        """Wait until every live worker has applied `generation` (or the time is up);
        returns each worker's last report."""
        deadline = time.monotonic() + timeout_s
        while True:
            reports = self.reports()
            if all(applied >= generation for applied, _ in reports.values()) or time.monotonic() > deadline:
                return reports
            await asyncio.sleep(0.05)

    def _report_path(self, pid: int) -> Path:
        return self.folder / f"{_REPORT_PREFIX}{pid}.json"


def _write_atomically(path: Path, content: bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
