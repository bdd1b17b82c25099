"""Reloading a real `tollgate serve` while it serves: POST /admin/reload, SIGHUP and
a watched file; a request in flight finishes on its own config; a route switches
provider under continuous load without a failed request; two workers reload
together. Driven with the official OpenAI SDK against the simulator."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from .configs import ConfigFile, routed, target
from .harness import Proxy, marker, marker_id, upstream_requests

ADMIN_KEY = "adm-reload-e2e-71b2"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def config(simulator_url: str, *, watch: bool = False) -> ConfigFile:
    """The routed config, with an admin key (and, if asked, the file watched)."""
    return routed(simulator_url).with_server(admin_key=ADMIN_KEY, **({"watch_config": True} if watch else {}))


def switched(config: ConfigFile) -> ConfigFile:
    """`gpt-5.4-mini` served by acme, with openai as its fallback."""
    switched = config.changed()
    mini = switched.routes["gpt-5.4-mini"]
    mini["targets"], mini["fallbacks"] = mini["fallbacks"], mini["targets"]
    return switched


def without_openai(config: ConfigFile) -> ConfigFile:
    """Every route on acme; the provider openai is gone from the config."""
    acme_only = config.changed()
    del acme_only.providers["openai"]
    for name, settings in acme_only.routes.items():
        acme_only.routes[name] = {
            **{key: value for key, value in settings.items() if key != "fallbacks"},
            "targets": [target("acme", each["model"]) for each in settings["targets"]],
        }
    return acme_only


def broken(config: ConfigFile) -> ConfigFile:
    """Two mistakes: a fallback to a provider misspelt, and a key misnamed."""
    wrong = config.changed()
    image = wrong.routes["gpt-image-2"]
    image["fallbacks"] = [target("acmee", "gpt-image-2")]
    image["timeout"] = image.pop("timeout_s")
    return wrong


def chat(proxy: Proxy, content: str = "hi", **options):
    return proxy.client(**options).chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": content}]
    )


def ready_version(proxy: Proxy) -> str:
    with httpx.Client() as client:  # a new connection: with several workers, any of them answers
        return client.get(f"{proxy.url}/readyz").json()["config_version"]


def admin_reload(proxy: Proxy) -> httpx.Response:
    return httpx.post(f"{proxy.url}/admin/reload", headers=ADMIN, timeout=30)


def finished_row(proxy: Proxy, request_id: str, timeout_s: float = 10) -> dict:
    """Rows reach the database a moment after the response: wait for the finished one."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(f"{proxy.url}/admin/requests/{request_id}", headers=ADMIN)
        if response.status_code == 200 and response.json()["status"] != "started":
            return response.json()
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


def metric(proxy: Proxy, name: str, **labels: str) -> float:
    text = httpx.get(f"{proxy.url}/metrics").text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") and ",".join(sorted(line[len(name) + 1 : line.index("}")].split(","))) == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(condition, timeout_s: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_workers(start_proxy, served: ConfigFile, workers: int) -> Proxy:
    """A proxy whose every worker is serving (readiness answers as soon as one is)."""
    proxy = start_proxy(served, "--workers", str(workers))
    wait_for(lambda: proxy.log().count("Application startup complete") >= workers, what="every worker")
    return proxy


def test_a_request_in_flight_finishes_on_its_config_while_new_ones_take_the_new_one(simulator, start_proxy):
    served = config(simulator.url)
    proxy = start_proxy(served)
    old_version = ready_version(proxy)
    slow_text = f"slow {marker(delay=2)}"
    slow: dict = {}

    def slow_request() -> None:
        try:
            slow["raw"] = chat(proxy, slow_text)
        except Exception as error:  # the assertion below reports it
            slow["error"] = error

    worker = threading.Thread(target=slow_request)
    worker.start()
    wait_for(lambda: upstream_requests(simulator, marker_id(slow_text)), what="the slow request upstream")
    # The provider the slow request is using disappears from the config: its pool must outlive the request.
    proxy.config_path.write_text(without_openai(served).yaml())

    reloaded = admin_reload(proxy)

    assert reloaded.status_code == 200, reloaded.text
    new_version = reloaded.json()["config_version"]
    assert reloaded.json()["previous_config_version"] == old_version != new_version
    fresh = chat(proxy)
    assert fresh.headers["x-tollgate-provider"] == "acme"
    worker.join(15)
    assert "error" not in slow and slow["raw"].parse().choices[0].message.content
    assert slow["raw"].headers["x-tollgate-provider"] == "openai"
    assert finished_row(proxy, slow["raw"].headers["x-request-id"])["config_version"] == old_version
    assert finished_row(proxy, fresh.headers["x-request-id"])["config_version"] == new_version
    assert metric(proxy, "tollgate_requests_by_config_total", config_version=old_version) >= 1
    assert metric(proxy, "tollgate_requests_by_config_total", config_version=new_version) >= 1
    assert metric(proxy, "tollgate_config_reloads_total", result="ok") == 1
    assert metric(proxy, "tollgate_config_info", version=new_version) == 1
    assert metric(proxy, "tollgate_config_info", version=old_version) == 0


def test_sighup_reloads_and_a_bad_config_is_refused_with_its_errors_while_the_old_one_serves(simulator, start_proxy):
    good = config(simulator.url)
    proxy = start_proxy(good)
    old_version = ready_version(proxy)
    proxy.config_path.write_text(broken(good).yaml())

    proxy.process.send_signal(signal.SIGHUP)

    wait_for(lambda: "config reload refused" in proxy.log(), what="the refusal in the log")
    (refusal,) = [line for line in proxy.log().splitlines() if "config reload refused" in line]
    assert "unknown provider 'acmee'; did you mean 'acme'?" in refusal
    assert "routes.gpt-image-2.timeout: unknown key 'timeout'; did you mean 'timeout_s'?" in refusal
    assert chat(proxy).headers["x-tollgate-provider"] == "openai"
    assert ready_version(proxy) == old_version
    assert metric(proxy, "tollgate_config_reloads_total", result="failed") == 1

    proxy.config_path.write_text(switched(good).yaml())
    proxy.process.send_signal(signal.SIGHUP)

    wait_for(lambda: ready_version(proxy) != old_version, what="the new version")
    assert chat(proxy).headers["x-tollgate-provider"] == "acme"
    assert proxy.process.poll() is None


def test_a_route_switches_provider_under_load_without_a_failed_request(simulator, start_proxy):
    served = config(simulator.url)
    proxy = start_proxy(served)
    proxy.config_path.write_text(switched(served).yaml())
    sent: list[tuple[float, str | None, str | None, Exception | None]] = []  # (start, provider, request id, error)
    reloaded_at: list[float] = []
    stop = threading.Event()

    def client_thread() -> None:
        client = proxy.client(timeout=30)
        for _ in range(400):  # bounded, whatever happens
            if stop.is_set():
                return
            started = time.perf_counter()
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}]
                )
                sent.append((started, raw.headers["x-tollgate-provider"], raw.headers["x-request-id"], None))
            except Exception as error:  # the assertion below reports it
                sent.append((started, None, None, error))

    threads = [threading.Thread(target=client_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(sent) >= 20, what="traffic before the reload")
    response = admin_reload(proxy)
    reloaded_at.append(time.perf_counter())
    assert response.status_code == 200, response.text
    new_version = response.json()["config_version"]
    wait_for(lambda: sum(started > reloaded_at[0] for started, *_ in sent) >= 20, what="traffic after the reload")
    stop.set()
    for thread in threads:
        thread.join(30)

    assert [error for *_, error in sent if error is not None] == []
    before = [provider for started, provider, _, _ in sent if started < reloaded_at[0]]
    after = [(provider, request_id) for started, provider, request_id, _ in sent if started > reloaded_at[0]]
    assert "openai" in before
    assert {provider for provider, _ in after} == {"acme"}
    for _, request_id in after[:10]:
        row = finished_row(proxy, request_id)
        assert (row["provider"], row["config_version"], row["status"]) == ("acme", new_version, "ok")


def test_two_workers_reload_together_from_the_admin_api_and_from_sighup(simulator, start_proxy):
    first = config(simulator.url)
    proxy = start_workers(start_proxy, first, 2)
    proxy.config_path.write_text(switched(first).yaml())

    response = admin_reload(proxy)

    assert response.status_code == 200, response.text
    document = response.json()
    version = document["config_version"]
    assert len(document["workers"]) == 2 and set(document["workers"].values()) == {version}
    providers = set()
    for _ in range(16):  # a new connection each time, so both workers answer some
        with httpx.Client() as client:
            reply = client.post(
                f"{proxy.url}/v1/chat/completions",
                json={"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}]},
            )
            providers.add(reply.headers["x-tollgate-provider"])
    assert providers == {"acme"}

    proxy.config_path.write_text(first.yaml())
    proxy.process.send_signal(signal.SIGHUP)  # to the supervisor

    # Each worker publishes the version it serves; the old one drops to 0 once both have moved.
    wait_for(lambda: metric(proxy, "tollgate_config_info", version=version) == 0, what="both workers to reload")
    for _ in range(16):
        with httpx.Client() as client:
            assert client.get(f"{proxy.url}/readyz").json()["config_version"] != version
    assert chat(proxy).headers["x-tollgate-provider"] == "openai"
    assert metric(proxy, "tollgate_config_reloads_total", result="ok") == 4  # each worker counts its own


def test_a_watched_file_reloads_every_worker_when_it_changes(simulator, start_proxy):
    watched = config(simulator.url, watch=True)
    proxy = start_workers(start_proxy, watched, 2)
    old_version = ready_version(proxy)
    next_file = Path(f"{proxy.config_path}.next")
    next_file.write_text(switched(watched).yaml())
    next_file.replace(proxy.config_path)  # the way editors and deploy tools replace a file

    wait_for(lambda: metric(proxy, "tollgate_config_info", version=old_version) == 0, what="both workers to reload")
    assert chat(proxy).headers["x-tollgate-provider"] == "acme"
    with httpx.Client() as client:
        assert client.get(f"{proxy.url}/readyz").json()["config_version"] != old_version
