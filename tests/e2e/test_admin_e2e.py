"""The admin API and `tollgate spend` against a real `tollgate serve`: a request's
row is found by its id, reviewed, and counted in spend, and the CLI reading the
database prints exactly what the endpoint serves."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from proxy.cli import main

from .configs import JSON_LOGS, ConfigFile, key, openai_on, route, target
from .harness import CLIENT_KEY, OPENAI_UPSTREAM_KEY

ADMIN_KEY = "adm-e2e-3c5a9d"


def admin_config(simulator_url: str) -> ConfigFile:
    return ConfigFile(
        server={"admin_key": "${TOLLGATE_ADMIN_KEY}", "log": JSON_LOGS},
        providers={"openai": openai_on(simulator_url)},
        routes={"gpt-image-2": route(target("openai", "gpt-image-2"), owner="platform-team", review="required")},
        keys=[key("web-app", CLIENT_KEY, "growth")],
    )


def finished_row(admin: httpx.Client, request_id: str) -> dict:
    """A read waits for the rows journaled before it: the answered request's row is final at once."""
    response = admin.get(f"/admin/requests/{request_id}")
    assert response.status_code == 200 and response.json()["status"] != "started", response.text
    return response.json()


def test_a_request_is_found_reviewed_and_counted(simulator, start_proxy, monkeypatch, capsys):
    proxy = start_proxy(admin_config(simulator.url), env={"TOLLGATE_ADMIN_KEY": ADMIN_KEY})
    raw = proxy.client().images.with_raw_response.generate(model="gpt-image-2", prompt="a kite", quality="low")
    request_id, cost = raw.headers["x-request-id"], raw.headers["x-tollgate-cost-usd"]

    with httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        row = finished_row(admin, request_id)
        assert (row["status"], row["provider"], row["billing_owner"]) == ("ok", "openai", "openai/org-test")
        assert (row["key_id"], row["team"], row["cost_usd"]) == ("web-app", "growth", cost)
        assert row["review_status"] == "pending"

        as_client = admin.get(f"/admin/requests/{request_id}", headers={"authorization": f"Bearer {CLIENT_KEY}"})
        assert as_client.status_code == 403 and "client key" in as_client.json()["error"]["message"]

        review = {"status": "rejected", "reviewer": "ana", "note": "off brand"}
        reviewed = admin.post(f"/admin/requests/{request_id}/review", json=review).json()
        assert reviewed["review_status"] == "rejected" and reviewed["review"]["note"] == "off brand"
        listed = admin.get("/admin/requests", params={"review_status": "rejected"}).json()["data"]
        assert [row["request_id"] for row in listed] == [request_id]

        served = admin.get("/admin/spend", params={"group_by": "route,provider,team"}).text
        configured = admin.get("/admin/config")
        assert OPENAI_UPSTREAM_KEY not in configured.text and CLIENT_KEY not in configured.text
        assert ADMIN_KEY not in configured.text

    spend = orjson.loads(served)
    assert spend["rows"] == [
        {"route": "gpt-image-2", "provider": "openai", "team": "growth", "requests": 1, "cost_usd": cost}
    ]
    assert spend["total_usd"] == cost

    # The CLI reads the same database from the proxy's folder while it runs.
    monkeypatch.chdir(proxy.config_path.parent)
    monkeypatch.setenv("TOLLGATE_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("TOLLGATE_LEDGER_URL", f"sqlite:///{proxy.config_path.parent}/ledger.db")
    code = main(["spend", "--config", str(proxy.config_path), "--by", "route,provider,team", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and out == served + "\n"
    assert "journal file(s)" not in err  # the running proxy's journal is waited for, not warned about


def test_a_failed_image_request_leaves_nothing_to_review(simulator, start_proxy):
    """A route with `review: required` queues what it made; a refusal made nothing."""
    proxy = start_proxy(admin_config(simulator.url), env={"TOLLGATE_ADMIN_KEY": ADMIN_KEY})
    with pytest.raises(openai.BadRequestError) as refused:
        proxy.client().images.generate(model="gpt-image-2", prompt="a kite", size="1000x1000")
    made = proxy.client().images.with_raw_response.generate(model="gpt-image-2", prompt="a kite", quality="low")
    with httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        failed = finished_row(admin, refused.value.response.headers["x-request-id"])
        answered = finished_row(admin, made.headers["x-request-id"])
    assert (failed["status"], failed["review_status"]) == ("error", "not_required")
    assert (answered["status"], answered["review_status"]) == ("ok", "pending")
