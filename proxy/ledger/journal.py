"""The ledger's append-only journal: every row is written here first, before the
upstream is called, and reaches the database later from a background thread.

Each process writes its own files in the journal directory, `<owner>.<seq>.jsonl`,
and holds an exclusive lock on `<owner>.lock` while it lives. A lock that can be
taken therefore belongs to a process that died (SIGKILL, a crash): its files are
replayed into the database by the next process to start.

An append is one write(2) of one line to the page cache — microseconds, and
enough to survive `kill -9`, since the kernel keeps what a dead process wrote.
The writer process fsyncs the journal once a second, so the request path never
waits on the disk and a machine crash loses at most that second.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROTATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    seq: int


class Journal:
    def __init__(self, directory: Path, *, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.owner = uuid.uuid4().hex[:16]
        self._lock = _take_lock(directory / f"{self.owner}.lock")
        assert self._lock is not None, "a fresh owner's lock is free"
        self._rotate_bytes = rotate_bytes
        self._seq = 0
        self._size = 0
        self._fd = self._open_segment()
        self.bytes_appended = 0
        self._starts = [0]  # bytes appended before each segment, by seq

    @property
    def current(self) -> Segment:
        return self.segment(self._seq)

    def segment(self, seq: int) -> Segment:
        return Segment(self._segment_path(seq), seq)

    def append(self, line: bytes) -> None:
        """One whole line, in one write: O_APPEND keeps lines from interleaving."""
        os.write(self._fd, line)
        self._size += len(line)
        self.bytes_appended += len(line)
        if self._size >= self._rotate_bytes:
            self._rotate()

    def segments(self) -> list[Segment]:
        return segments(self.directory, self.owner)

    def position(self, applied: int) -> tuple[int, int]:
        """Where a writer resumes once `applied` bytes are in: (segment seq, offset in it)."""
        seq = bisect.bisect_right(self._starts, applied) - 1
        return seq, applied - self._starts[seq]

    def _segment_path(self, seq: int) -> Path:
        return self.directory / f"{self.owner}.{seq:06d}.jsonl"

    def _open_segment(self) -> int:
        return os.open(self._segment_path(self._seq), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _rotate(self) -> None:
        # The writer finishes a segment once a later one exists, so the new file is
        # created only after the last write to the old one.
        os.close(self._fd)
        self._seq += 1
        self._size = 0
        self._starts.append(self.bytes_appended)
        self._fd = self._open_segment()

    def close(self, *, remove: bool) -> None:
        """Release the journal; `remove` when everything in it is in the database."""
        os.close(self._fd)
        if remove:
            for segment in self.segments():
                segment.path.unlink(missing_ok=True)
        lock_path = self.directory / f"{self.owner}.lock"
        if remove:
            lock_path.unlink(missing_ok=True)
        os.close(self._lock)


@dataclass(slots=True)
class Orphan:
    """The journal of a process that died: locked by us until it is replayed."""

    owner: str
    directory: Path
    lock_fd: int

    def segments(self) -> list[Segment]:
        return segments(self.directory, self.owner)

    def lines(self) -> Iterator[bytes]:
        for segment in self.segments():
            with segment.path.open("rb") as file:
                for line in file:
                    if line.endswith(b"\n"):  # a line cut by the crash was never acknowledged
                        yield line

    def remove(self) -> None:
        for segment in self.segments():
            segment.path.unlink(missing_ok=True)
        (self.directory / f"{self.owner}.lock").unlink(missing_ok=True)
        os.close(self.lock_fd)


def orphans(directory: Path, *, own: str) -> list[Orphan]:
    """Journals in `directory` whose writer is gone (their lock can be taken)."""
    found = []
    for lock_path in sorted(directory.glob("*.lock")):
        owner = lock_path.stem
        if owner == own:
            continue
        lock_fd = _take_lock(lock_path)
        if lock_fd is not None:
            found.append(Orphan(owner, directory, lock_fd))
    return found


def segments(directory: Path, owner: str) -> list[Segment]:
    found = []
    for path in directory.glob(f"{owner}.*.jsonl"):
        seq = path.name.split(".")[1]
        if seq.isdigit():
            found.append(Segment(path, int(seq)))
    return sorted(found, key=lambda segment: segment.seq)


def _take_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
