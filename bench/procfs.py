"""What Linux says about CPU time and memory, read straight from /proc."""

from __future__ import annotations

import os
import resource
from collections.abc import Collection, Iterator
from dataclasses import dataclass

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name, which may itself hold spaces and parentheses:
    [state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt, utime, stime, ...]."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            text = file.read().decode()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def _all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def session_pids(session: int) -> list[int]:
    """Every live process of a session: a server and whatever it forked."""
    return [pid for pid in _all_pids() if (fields := _stat_fields(pid)) and int(fields[3]) == session]


def cpu_seconds(pids: Collection[int]) -> float:
    total = 0
    for pid in pids:
        if fields := _stat_fields(pid):
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS_PER_S


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent not idle, summed over cores (from /proc/stat)."""
    with open("/proc/stat") as file:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in file.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_S


def reaped_children_cpu_seconds() -> float:
    """CPU time of child processes that have exited and been waited for (wrk, once it is done)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_bytes(pids: Collection[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as file:
                for line in file:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds so far: of each named session we started, of reaped children, of the machine."""

    sessions: dict[str, float]
    children: float
    machine: float

    @classmethod
    def take(cls, sessions: dict[str, int]) -> CpuSnapshot:
        return cls(
            sessions={name: cpu_seconds(session_pids(sid)) for name, sid in sessions.items()},
            children=reaped_children_cpu_seconds(),
            machine=busy_cpu_seconds(),
        )

    def cores_since(self, earlier: CpuSnapshot, wall_s: float) -> dict[str, float]:
        """Average cores each party kept busy between two snapshots. `wrk` is the load
        generator (reaped between them); `other` is everything else on the machine:
        someone else's job, or kernel work not charged to any process."""
        used = {name: seconds - earlier.sessions.get(name, 0.0) for name, seconds in self.sessions.items()}
        used["wrk"] = self.children - earlier.children
        machine = self.machine - earlier.machine
        used["other"] = max(0.0, machine - sum(used.values()))
        return {name: round(seconds / wall_s, 2) for name, seconds in used.items()}
