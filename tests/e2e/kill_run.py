"""Client traffic through the load balancer while one replica is killed and restarted.

`concurrency` clients of the official SDK (AsyncOpenAI) send `requests` chat
completions in all, each tagged with a `prompt_version` of its own (a field the
client sets and the ledger keeps), so that every client request can be found in
the ledger however many replicas it went through. Once half of them are over, the
victim replica, with requests in flight, gets SIGKILL and is started again at once
(in its folder, on its port) while the traffic goes on. Requests in the last third
are not sent before it is ready again, so the restarted replica serves some. With no
victim, it is the same traffic with every replica up throughout."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

import httpx
import openai

from .harness import requests_in_flight
from .replicas import Replicas

PROMPT_VERSION_HEADER = "x-prompt-version"


@dataclass(frozen=True, slots=True)
class Plan:
    url: str  # the load balancer
    requests: int
    concurrency: int
    keys: list[str]  # request i is sent with keys[i % len(keys)]
    model: str
    run: str  # the tags' prefix, unique to the run
    victim: int | None = 1  # which replica is killed; None: none is
    content: str = "hello"  # every request's message
    # An output bound keeps a budget's reservation (the estimate) near the actual cost, so
    # that a capped team's requests truly compete for what is left.
    max_completion_tokens: int | None = None

    def tag(self, index: int) -> str:
        return f"{self.run}-{index:06d}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the client saw of one request."""

    tag: str
    key: str
    sent_s: float  # monotonic
    ended_s: float
    status: int | None  # None: the connection failed
    request_id: str | None  # on every answer from Tollgate, none on nginx's own 502
    cost: Decimal | None  # x-tollgate-cost-usd
    code: str | None  # the error's code

    @property
    def answered(self) -> bool:
        """A replica answered it (success or refusal): it must have exactly one row."""
        return self.request_id is not None


@dataclass
class Timeline:
    started_utc: str = ""  # before the first request: every row of the run was created after
    started_s: float = 0.0
    killed_s: float | None = None
    in_flight_at_kill: float = 0.0  # what the victim's gauge said just before
    ready_again_s: float | None = None
    held_s: float = 0.0  # how long requests waited for the restart, all clients together
    ended_s: float = 0.0

    @property
    def restart_s(self) -> float | None:
        """From SIGKILL to the new process ready."""
        return None if self.killed_s is None or self.ready_again_s is None else self.ready_again_s - self.killed_s


def run(plan: Plan, replicas: Replicas) -> tuple[list[Outcome], Timeline]:
    return asyncio.run(_Run(plan, replicas).go())


class _Run:
    def __init__(self, plan: Plan, replicas: Replicas) -> None:
        self.plan = plan
        self.replicas = replicas
        self.outcomes: list[Outcome] = []
        self.timeline = Timeline()
        self._next = 0
        self._half_over = asyncio.Event()
        self._ready_again = asyncio.Event()

    async def go(self) -> tuple[list[Outcome], Timeline]:
        limits = httpx.Limits(max_connections=self.plan.concurrency, max_keepalive_connections=self.plan.concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=120) as http:
            base = openai.AsyncOpenAI(base_url=f"{self.plan.url}/v1", api_key="-", max_retries=0, http_client=http)
            clients = {key: base.with_options(api_key=key) for key in set(self.plan.keys)}
            self.timeline.started_utc = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
            self.timeline.started_s = time.monotonic()
            killer = asyncio.create_task(self._kill_and_restart())
            await asyncio.gather(*(self._client(clients) for _ in range(self.plan.concurrency)))
            self.timeline.ended_s = time.monotonic()
            await killer
        return sorted(self.outcomes, key=lambda outcome: outcome.tag), self.timeline

    async def _client(self, clients: dict[str, openai.AsyncOpenAI]) -> None:
        while self._next < self.plan.requests:
            index, self._next = self._next, self._next + 1
            if self.plan.victim is not None and index >= self.plan.requests * 2 // 3 and not self._ready_again.is_set():
                held = time.monotonic()
                await self._ready_again.wait()
                self.timeline.held_s += time.monotonic() - held
            key = self.plan.keys[index % len(self.plan.keys)]
            self.outcomes.append(await self._send(clients[key], key, self.plan.tag(index)))
            if len(self.outcomes) >= self.plan.requests // 2:
                self._half_over.set()

    async def _send(self, client: openai.AsyncOpenAI, key: str, tag: str) -> Outcome:
        messages = [{"role": "user", "content": self.plan.content}]
        sent = time.monotonic()
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model=self.plan.model,
                messages=messages,
                max_completion_tokens=self.plan.max_completion_tokens or openai.omit,
                extra_headers={PROMPT_VERSION_HEADER: tag},
            )
        except openai.APIStatusError as error:
            request_id = error.response.headers.get("x-request-id")
            return Outcome(tag, key, sent, time.monotonic(), error.status_code, request_id, None, error.code)
        except openai.APIConnectionError:
            return Outcome(tag, key, sent, time.monotonic(), None, None, None, None)
        cost = Decimal(raw.headers["x-tollgate-cost-usd"])
        return Outcome(tag, key, sent, time.monotonic(), raw.status_code, raw.headers["x-request-id"], cost, None)

    async def _kill_and_restart(self) -> None:
        if self.plan.victim is None:
            return
        await self._half_over.wait()
        victim = self.replicas.live[self.plan.victim]
        assert victim is not None
        # Killed while it serves, so that some answers never come: when it holds half its share
        # of the clients' requests, or after 2 s any one (a busy machine keeps fewer in flight).
        share = max(1, self.plan.concurrency // (2 * len(self.replicas.ports)))
        waiting = time.monotonic()
        while (in_flight := await asyncio.to_thread(requests_in_flight, victim)) < share:
            waited = time.monotonic() - waiting
            if (in_flight >= 1 and waited > 2) or waited > 10:
                break
            await asyncio.sleep(0.005)
        self.timeline.in_flight_at_kill = in_flight
        self.timeline.killed_s = time.monotonic()
        await asyncio.to_thread(self.replicas.kill, self.plan.victim)
        await asyncio.to_thread(self.replicas.restart, self.plan.victim)
        self.timeline.ready_again_s = time.monotonic()
        self._ready_again.set()


def one_request(url: str, key: str, plan: Plan) -> tuple[Decimal, Decimal]:
    """What one of the plan's requests costs, and what a budget reserves for it while it runs
    (its estimate with retries): a budget is sized from them. It makes one ledger row."""
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": plan.model, "messages": [{"role": "user", "content": plan.content}]}
    if plan.max_completion_tokens:
        body["max_completion_tokens"] = plan.max_completion_tokens
    answer = httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body)
    answer.raise_for_status()
    only = {**headers, "x-tollgate-estimate-only": "true"}
    estimate = httpx.post(f"{url}/v1/chat/completions", headers=only, json=body).json()["estimates"][0]
    return Decimal(answer.headers["x-tollgate-cost-usd"]), Decimal(estimate["with_retries_usd"])
