"""What Linux says about CPU time and memory, read straight from /proc."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_NEIGHBOUR_MIN_CORES = 0.02  # below this a process we did not start is not worth naming


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    name: str  # a kernel thread's changes with its work
    session: int
    started: int  # boot-relative ticks: with the pid, names one process over time
    cpu_s: float  # user + system, all threads


def processes() -> dict[int, ProcessCpu]:
    """Every live process: its name, session and CPU time so far."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as file:
                text = file.read().decode(errors="replace")
        except OSError:  # it exited meanwhile
            continue
        # "pid (name) state ppid pgrp session … utime stime … starttime …" (proc(5)); the
        # name may hold spaces and parentheses, so fields are counted from its end.
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
        found[int(entry.name)] = ProcessCpu(name, session=int(fields[3]), started=int(fields[19]), cpu_s=cpu_s)
    return found


def session_pids(session: int) -> list[int]:
    """Every live process of a session: a server and whatever it forked."""
    return [pid for pid, process in processes().items() if process.session == session]


def rss_bytes(pids: Collection[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as file:
                for line in file:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def _machine_cpu_seconds() -> tuple[float, float]:
    """CPU time of the whole machine, summed over cores (from /proc/stat): time charged to
    processes (or stolen by the hypervisor), and time spent in interrupts — for loopback
    traffic, mostly the kernel moving packets, charged to no process."""
    with open("/proc/stat") as file:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in file.readline().split()[1:9])
    return (user + nice + system + steal) / _TICKS_PER_S, (irq + softirq) / _TICKS_PER_S


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds so far: of every process, of our reaped children (wrk, once it has
    finished), and of the machine."""

    processes: dict[int, ProcessCpu]
    children: float
    machine: float
    interrupts: float

    @classmethod
    def take(cls) -> CpuSnapshot:
        machine, interrupts = _machine_cpu_seconds()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(processes(), usage.ru_utime + usage.ru_stime, machine, interrupts)

    def cores_since(
        self, earlier: CpuSnapshot, wall_s: float, sessions: dict[str, int]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Average cores each party kept busy between two snapshots, and the busiest
        processes we did not start. Parties: each of our `sessions` by name, `wrk` (the
        load generator), `irq` (the kernel's interrupt work, which the traffic itself
        causes) and `other` (everything else: someone else's job)."""
        used = {name: 0.0 for name in sessions}
        by_session = {session: name for name, session in sessions.items()}
        neighbours: dict[str, float] = {}
        for pid, now in self.processes.items():
            before = earlier.processes.get(pid)
            spent = now.cpu_s - (before.cpu_s if before and before.started == now.started else 0.0)
            if now.session in by_session:
                used[by_session[now.session]] += spent
            elif pid != os.getpid() and spent / wall_s >= _NEIGHBOUR_MIN_CORES:
                neighbours[f"{now.name}[{pid}]"] = round(spent / wall_s, 2)
        used["wrk"] = self.children - earlier.children
        used["irq"] = self.interrupts - earlier.interrupts
        ours = sum(used.values()) - used["irq"]
        used["other"] = max(0.0, self.machine - earlier.machine - ours)
        busiest = dict(sorted(neighbours.items(), key=lambda item: -item[1])[:3])
        return {name: round(seconds / wall_s, 2) for name, seconds in used.items()}, busiest


class RssSampler:
    """The RSS of one session's processes (a server and its workers), every `interval_s`
    from a thread while the with-block runs: (seconds since the start, bytes)."""

    def __init__(self, session: int, interval_s: float = 1.0) -> None:
        self.session = session
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._started = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(self.interval_s):
            self.samples.append((round(time.perf_counter() - self._started, 1), rss_bytes(session_pids(self.session))))


def session_cpu_by_pid(session: int) -> dict[int, float]:
    """CPU seconds so far of each live process of a session (a server, its workers and helpers)."""
    return {pid: process.cpu_s for pid, process in processes().items() if process.session == session}
