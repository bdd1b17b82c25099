"""`tollgate serve` stopped every way an operator or a supervisor stops it: SIGTERM or
SIGINT to its whole process group (systemd's KillMode=control-group, `timeout`,
supervisord's killasgroup, Ctrl-C), to the parent alone, or to one child alone; with
one worker or several, the simulator inside the process or outside it. Each stop is
clean (exit 0) within the drain timeout plus a few seconds, and every request that
was answered has its ledger row afterwards, the journal emptied into the database."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from .configs import ConfigFile, routed
from .harness import Proxy, eventually, ledger_rows, marker, requests_in_flight, spawned_children

DRAIN_S = 3
STOPPED_WITHIN_S = DRAIN_S + 8  # closing providers and the ledger's flush, on a loaded machine


def stoppable(simulator_url: str) -> ConfigFile:
    return routed(simulator_url).with_server(drain_timeout_s=DRAIN_S)


def chat(proxy: Proxy, text: str = "hi") -> str:
    """One answered request: its request id."""
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": text}]
    )
    assert raw.parse().choices[0].message.content
    return raw.headers["x-request-id"]


def rows_recorded(proxy: Proxy, request_ids: list[str]) -> int:
    quoted = ", ".join(f"'{request_id}'" for request_id in request_ids)
    return ledger_rows(proxy, f"status = 'ok' AND request_id IN ({quoted})")


def journal_lines(proxy: Proxy) -> list:
    return list(proxy.config_path.parent.glob("tollgate-journal/*.jsonl"))


def running_writers(proxy: Proxy, workers: int) -> list[int]:
    """The ledger writer of each serving process (the parent's, or each worker's)."""
    servers = [proxy.process.pid] if workers == 1 else spawned_children(proxy.process.pid)
    return [writer for server in servers for writer in spawned_children(server)]


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("target", "stop_signal", "workers", "simulate"),
    [
        ("group", signal.SIGTERM, 1, False),
        ("group", signal.SIGINT, 1, True),
        ("group", signal.SIGTERM, 2, True),
        ("group", signal.SIGINT, 2, False),
        ("parent", signal.SIGINT, 1, True),
        ("parent", signal.SIGTERM, 2, False),
    ],
    ids=lambda value: signal.Signals(value).name if isinstance(value, signal.Signals) else str(value),
)
def test_a_stop_signal_drains_and_exits_cleanly_in_time(simulator, start_proxy, target, stop_signal, workers, simulate):
    args = ["--workers", str(workers)] + (["--simulate-upstreams"] if simulate else [])
    proxy = start_proxy(stoppable(simulator.url), *args, own_group=True)
    # Every process serves before the signal: a worker still starting has nothing to drain.
    assert eventually(lambda: len(running_writers(proxy, workers)) == workers)
    answered = [chat(proxy) for _ in range(6)]
    slow: dict[str, str] = {}
    in_flight = threading.Thread(target=lambda: slow.update(id=chat(proxy, f"slow {marker(delay=1.5)}")))
    in_flight.start()
    assert eventually(lambda: requests_in_flight(proxy) == 1)

    signalled = time.monotonic()
    if target == "group":
        os.killpg(proxy.process.pid, stop_signal)
    else:
        os.kill(proxy.process.pid, stop_signal)
    assert proxy.process.wait(STOPPED_WITHIN_S) == 0
    assert time.monotonic() - signalled < STOPPED_WITHIN_S
    in_flight.join(5)
    answered.append(slow["id"])  # the request in flight was answered before the stop

    assert rows_recorded(proxy, answered) == len(answered)
    assert not journal_lines(proxy)  # everything went into the database
    assert eventually(lambda: group_gone(proxy.process.pid), timeout_s=5)  # no child is left behind
    assert "Traceback" not in proxy.log()


def test_the_ledger_writer_ignores_stop_signals_sent_to_it_alone(simulator, start_proxy):
    proxy = start_proxy(stoppable(simulator.url), own_group=True)
    (writer,) = running_writers(proxy, 1)
    os.kill(writer, signal.SIGTERM)
    os.kill(writer, signal.SIGINT)
    answered = [chat(proxy) for _ in range(4)]
    assert eventually(lambda: rows_recorded(proxy, answered) == 4)
    assert running_writers(proxy, 1) == [writer]
    assert proxy.stop() == 0 and not journal_lines(proxy)


def test_a_ledger_writer_killed_while_serving_is_restarted_and_readyz_says_so_meanwhile(simulator, start_proxy):
    proxy = start_proxy(stoppable(simulator.url), own_group=True)
    (writer,) = running_writers(proxy, 1)
    answered = [chat(proxy) for _ in range(3)]
    os.kill(writer, signal.SIGKILL)
    assert eventually(lambda: httpx.get(f"{proxy.url}/readyz").status_code == 503, timeout_s=1, interval_s=0.02)
    answered += [chat(proxy) for _ in range(3)]  # served meanwhile: the rows wait in the journal

    assert eventually(lambda: httpx.get(f"{proxy.url}/readyz").status_code == 200)
    (restarted,) = running_writers(proxy, 1)
    assert restarted != writer
    answered += [chat(proxy) for _ in range(3)]
    assert eventually(lambda: rows_recorded(proxy, answered) == 9)  # the new writer resumed where the old one was
    log = proxy.log()
    assert "the ledger writer process died (killed by SIGKILL); restarting it" in log
    assert "the ledger writer was restarted" in log
    assert proxy.stop() == 0 and not journal_lines(proxy)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_worker_stopped_alone_is_replaced_loudly_and_its_rows_kept(simulator, start_proxy, stop_signal):
    proxy = start_proxy(stoppable(simulator.url), "--workers", "2", own_group=True)
    assert eventually(lambda: len(running_writers(proxy, 2)) == 2)
    answered = [chat(proxy) for _ in range(8)]  # on either worker
    victim = spawned_children(proxy.process.pid)[0]
    os.kill(victim, stop_signal)

    def replaced() -> bool:
        workers = spawned_children(proxy.process.pid)
        return len(workers) == 2 and victim not in workers and len(running_writers(proxy, 2)) == 2

    assert eventually(replaced)
    assert f"worker process {victim} ended while serving" in proxy.log()
    answered += [chat(proxy) for _ in range(4)]
    # A worker killed outright leaves its journal; the replacement's writer replays it.
    assert eventually(lambda: rows_recorded(proxy, answered) == len(answered))
    assert proxy.stop() == 0 and not journal_lines(proxy)
