"""The check's side of the wire: a running Tollgate reached over HTTP, as an app
reaches it (the official `openai` SDK, every request marked `purpose:
launch_check` and given a prompt version), and as an operator reads it (ledger
rows from the admin API, failure counts from /metrics)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from openai import APIStatusError, OpenAI
from prometheus_client.parser import text_string_to_metric_families

from ..http.intake import ESTIMATE_ONLY_HEADER, PROMPT_VERSION_HEADER, PURPOSE_HEADER

PURPOSE = "launch_check"
ANY_KEY = "launch-check"  # what the check sends a proxy without `keys:`, which takes any key
PROMPT_VERSION = "launch-check/1"
FAILURES_METRIC = "tollgate_request_failures_total"
ROW_WAIT_S = 30.0  # rows reach the database in the background (at idle CPU priority) after their answer


class ProxyUnreadable(Exception):
    """The admin API or /metrics refused us; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Sent:
    """A request the check made: the ledger has a row for it."""

    step: int
    what: str
    request_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    request_id: str | None
    body: Any  # the SDK's parsed object on success, else None
    error: APIStatusError | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_message(self) -> str:
        if self.error is None:
            return ""
        body = self.error.body
        message = body.get("message") if isinstance(body, dict) else None
        return str(message or self.error.message)

    def describe(self) -> str:
        code = f" {self.error.code}" if self.error is not None and self.error.code else ""
        return f"{self.request_id or 'no request id'}: HTTP {self.status}{code} in {self.seconds:.1f} s"


class LaunchApi:
    def __init__(self, url: str, *, api_key: str, admin_key: str) -> None:
        self.url = url.rstrip("/")
        self.openai = OpenAI(
            base_url=f"{self.url}/v1",
            api_key=api_key,
            max_retries=0,  # a retry would hide the failure the check is looking for
            default_headers={PURPOSE_HEADER: PURPOSE, PROMPT_VERSION_HEADER: PROMPT_VERSION},
        )
        self._http = httpx.Client(base_url=self.url, timeout=30)
        self._admin = {"authorization": f"Bearer {admin_key}"}
        self.sent: list[Sent] = []
        self.rows: dict[str, dict[str, Any]] = {}  # the last row read for each request id

    def close(self) -> None:
        self.openai.close()
        self._http.close()

    # --- as an app ----------------------------------------------------------------------

    def send(self, step: int, what: str, method: Callable[..., Any], **params: Any) -> Answer:
        """`method`: an SDK call `with_raw_response`, e.g. `api.openai.images.with_raw_response.generate`."""
        started = time.perf_counter()
        try:
            raw = method(**params)
        except APIStatusError as error:
            answer = Answer(error.status_code, error.request_id, None, error, _since(started))
        else:
            answer = Answer(raw.status_code, raw.request_id, raw.parse(), None, _since(started))
        if answer.request_id:
            self.sent.append(Sent(step, what, answer.request_id))
        return answer

    def estimate(self, **params: Any) -> dict[str, Any]:
        """The proxy's pre-flight estimate for an image generation: no upstream call, no ledger row."""
        raw = self.openai.images.with_raw_response.generate(**params, extra_headers={ESTIMATE_ONLY_HEADER: "true"})
        return raw.http_response.json()

    # --- as an operator -------------------------------------------------------------------

    def row(self, request_id: str, *, ready: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
        """The request's finished ledger row (and, with `ready`, once it says so), waiting
        up to ROW_WAIT_S for the background writer; the last row seen, or None."""
        deadline = time.monotonic() + ROW_WAIT_S
        row = None
        while True:
            response = self._http.get(f"/admin/requests/{request_id}", headers=self._admin)
            if response.status_code not in (200, 404):  # 404: not in the database yet
                raise ProxyUnreadable(f"the admin API answered {response.status_code}: {_message(response)}")
            if response.status_code == 200:
                row = self.rows[request_id] = response.json()
                if row["status"] != "started" and (ready is None or ready(row)):
                    return row
            if time.monotonic() > deadline:
                return row
            time.sleep(0.1)

    def failures(self, route: str) -> Counter[str]:
        """The route's failure counter from /metrics, by reason."""
        response = self._http.get("/metrics")
        if response.status_code != 200:
            raise ProxyUnreadable(f"GET /metrics answered {response.status_code}: {_message(response)}")
        counts: Counter[str] = Counter()
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == FAILURES_METRIC and sample.labels.get("route") == route:
                    counts[sample.labels.get("reason", "")] += sample.value
        return counts

    def served_config_version(self) -> str | None:
        response = self._http.get("/readyz")
        return response.json().get("config_version") if response.status_code == 200 else None


def _since(started: float) -> float:
    return time.perf_counter() - started


def _message(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
