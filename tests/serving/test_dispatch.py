"""The retry and fallback loop, driven by providers that answer from a script so
that each decision (retry, wait, fall back, relay, give up) can be pinned down."""

from __future__ import annotations

import pytest

from providers.answer_body import AnswerBody
from providers.base import Provider, UpstreamReply
from providers.errors import FailureReason, UpstreamConnectError, UpstreamTimeout
from providers.types import Call, JsonBody, Surface
from proxy.serving.dispatch import RouteExhausted, dispatch
from proxy.serving.routing import PlannedTarget, RoutePlan

CALL = Call(
    request_id="req_1",
    surface=Surface.CHAT,
    model="chat",
    stream=False,
    body=JsonBody(b'{"model":"chat"}', {"model": "chat"}),
)


class ScriptedProvider(Provider):
    """Answers each send with the next item of its script: a reply, or a failure to raise."""

    def __init__(self, name: str, *script) -> None:
        super().__init__(name)
        self.script = list(script)
        self.sent: list[str] = []

    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        self.sent.append(model)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def reply(status: int, **headers: str) -> UpstreamReply:
    return UpstreamReply(status, {"content-type": "application/json", **headers}, body=AnswerBody.of(b'{"ok": true}'))


def plan(*providers: str, tries: int = 2, max_wait: float = 10) -> RoutePlan:
    targets = tuple(PlannedTarget(name, f"{name}-model", fallback=i > 0) for i, name in enumerate(providers))
    return RoutePlan(route="chat", targets=targets, tries_per_target=tries, timeout_s=5, max_retry_wait_s=max_wait)


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_a_5xx_is_retried_on_the_same_provider_then_succeeds():
    a = ScriptedProvider("a", reply(503), reply(200))
    sleeps = Sleeps()
    exchange = await dispatch(CALL, plan("a"), {"a": a}, sleep=sleeps)
    assert exchange.reply.status == 200 and exchange.target.provider == "a"
    assert [(t.provider, t.status, t.error) for t in exchange.attempts] == [
        ("a", 503, FailureReason.UPSTREAM_5XX),
        ("a", 200, None),
    ]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.25  # jittered backoff


async def test_retry_after_is_honoured():
    a = ScriptedProvider("a", reply(429, **{"retry-after-ms": "1500"}), reply(200))
    sleeps = Sleeps()
    await dispatch(CALL, plan("a"), {"a": a}, sleep=sleeps)
    assert sleeps == [1.5]


async def test_a_retry_after_beyond_the_bound_falls_back_at_once():
    a = ScriptedProvider("a", reply(429, **{"retry-after": "120"}))
    b = ScriptedProvider("b", reply(200))
    sleeps = Sleeps()
    exchange = await dispatch(CALL, plan("a", "b", max_wait=10), {"a": a, "b": b}, sleep=sleeps)
    assert exchange.target.provider == "b" and exchange.target.fallback
    assert sleeps == [] and len(a.sent) == 1


async def test_when_retries_are_spent_the_fallback_answers_with_its_own_model_name():
    a = ScriptedProvider("a", UpstreamTimeout("a timed out"), UpstreamConnectError("a unreachable"))
    b = ScriptedProvider("b", reply(200))
    exchange = await dispatch(CALL, plan("a", "b"), {"a": a, "b": b}, sleep=Sleeps())
    assert exchange.target.provider == "b" and b.sent == ["b-model"]
    assert [t.error for t in exchange.attempts] == [FailureReason.TIMEOUT, FailureReason.CONNECT_ERROR, None]
    assert [t.status for t in exchange.attempts] == [None, None, 200]


async def test_a_client_fault_is_relayed_without_retry_or_fallback():
    moderation = UpstreamReply(
        400, {"content-type": "application/json"}, body=AnswerBody.of(b'{"error": {"code": "moderation_blocked"}}')
    )
    a = ScriptedProvider("a", moderation)
    b = ScriptedProvider("b", reply(200))
    exchange = await dispatch(CALL, plan("a", "b"), {"a": a, "b": b}, sleep=Sleeps())
    assert exchange.reply is moderation and b.sent == []
    assert len(exchange.attempts) == 1 and exchange.attempts[0].error is None


async def test_a_provider_refusing_our_key_is_not_retried_but_falls_back():
    a = ScriptedProvider("a", reply(401))
    b = ScriptedProvider("b", reply(200))
    exchange = await dispatch(CALL, plan("a", "b", tries=3), {"a": a, "b": b}, sleep=Sleeps())
    assert len(a.sent) == 1 and exchange.target.provider == "b"
    assert exchange.attempts[0].error == FailureReason.AUTH


async def test_when_everything_fails_the_error_is_the_last_failure_with_every_attempt():
    a = ScriptedProvider("a", reply(500), reply(502))
    b = ScriptedProvider("b", UpstreamTimeout("provider 'b' did not answer within 5s"), UpstreamTimeout("again"))
    with pytest.raises(RouteExhausted) as caught:
        await dispatch(CALL, plan("a", "b"), {"a": a, "b": b}, sleep=Sleeps())
    error = caught.value
    assert (error.status, error.reason, error.code) == (504, FailureReason.TIMEOUT, "upstream_timeout")
    assert len(error.attempts) == 4
    assert "Every provider for route 'chat' failed" in error.message
    assert "a: upstream_5xx (HTTP 500" in error.message and "b: timeout (no answer" in error.message


async def test_an_exhausted_rate_limit_tells_the_client_when_to_retry():
    a = ScriptedProvider("a", reply(429, **{"retry-after": "30"}))
    with pytest.raises(RouteExhausted) as caught:
        await dispatch(CALL, plan("a", max_wait=10), {"a": a}, sleep=Sleeps())
    assert caught.value.status == 429 and caught.value.headers == {"retry-after": "30"}


async def test_an_exhausted_route_reports_the_time_spent_waiting_between_tries():
    a = ScriptedProvider("a", reply(503, **{"retry-after": "0.5"}), reply(503))
    with pytest.raises(RouteExhausted) as caught:
        await dispatch(CALL, plan("a"), {"a": a}, sleep=Sleeps())
    assert caught.value.waited_s == 0.5
