"""Failure paths through the real proxy: each fault is injected by the simulator,
each outcome is seen through the official SDK, as an app would see it."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from .harness import ACME_UPSTREAM_KEY, CLIENT_KEY, OPENAI_UPSTREAM_KEY, marker, marker_id, upstream_requests


def chat(proxy, text: str, **options):
    return proxy.client().chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": text}], **options
    )


def test_a_server_error_is_retried_on_the_same_provider(proxy, simulator):
    text = f"hello {marker('server_error', times=1, upstream='openai')}"
    raw = chat(proxy, text)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-tollgate-provider"] == "openai"
    assert raw.headers["x-tollgate-attempts"] == "2"
    assert [r["upstream"] for r in upstream_requests(simulator, marker_id(text))] == ["openai", "openai"]


def test_a_rate_limit_is_retried_after_the_wait_the_upstream_asked_for(proxy):
    started = time.monotonic()
    raw = chat(proxy, f"hi {marker('rate_limit', times=1, retry_after=0.6, upstream='openai')}")
    assert raw.headers["x-tollgate-attempts"] == "2" and raw.headers["x-tollgate-provider"] == "openai"
    assert time.monotonic() - started >= 0.6


def test_a_failing_provider_falls_back_to_the_next(proxy, simulator):
    prompt = f"a red kite {marker('unavailable', upstream='openai')}"
    raw = proxy.client().images.with_raw_response.generate(model="gpt-image-2", prompt=prompt, quality="low")
    assert raw.parse().data[0].b64_json
    assert raw.headers["x-tollgate-provider"] == "acme"
    assert raw.headers["x-tollgate-billing-owner"] == "acme/acct-7"
    assert raw.headers["x-tollgate-attempts"] == "3"  # openai twice (1 retry), then acme
    seen = upstream_requests(simulator, marker_id(prompt))
    assert [r["upstream"] for r in seen] == ["openai", "openai", "acme"]
    assert [r["headers"]["authorization"] for r in seen] == [
        f"Bearer {OPENAI_UPSTREAM_KEY}",
        f"Bearer {OPENAI_UPSTREAM_KEY}",
        f"Bearer {ACME_UPSTREAM_KEY}",
    ]


def test_a_malformed_success_body_is_not_relayed_but_failed_over(proxy):
    raw = chat(proxy, f"hi {marker('malformed', upstream='openai')}")
    assert raw.parse().choices[0].message.content  # valid JSON, from acme
    assert raw.headers["x-tollgate-provider"] == "acme"


def test_an_upstream_timeout_is_a_504_after_every_provider_was_tried(proxy):
    client = proxy.client(default_headers={"x-tollgate-timeout-s": "0.3"})
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.generate(model="gpt-image-2", prompt=f"slow {marker('timeout', delay=5)}", quality="low")
    error = caught.value
    assert error.status_code == 504
    assert error.code == "upstream_timeout"
    assert "Every provider for route 'gpt-image-2' failed" in error.message
    assert "openai: timeout" in error.message and "acme: timeout" in error.message
    assert time.monotonic() - started < 4  # 4 attempts of 0.3 s and short backoffs, not the 5 s delay


@pytest.mark.parametrize(
    ("fault", "options", "status"),
    [
        ("rate_limit", {"retry_after": 0.05}, 429),
        ("server_error", {}, 502),
        ("timeout", {"delay": 5}, 504),
    ],
)
def test_when_every_provider_fails_the_answer_names_the_last_one_tried_and_the_attempts(proxy, fault, options, status):
    client = proxy.client(default_headers={"x-tollgate-timeout-s": "0.3"})
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="gpt-5.4-mini", messages=[{"role": "user", "content": f"hi {marker(fault, **options)}"}]
        )
    response = caught.value.response
    assert response.status_code == status
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-tollgate-route"] == "gpt-5.4-mini"
    assert response.headers["x-tollgate-provider"] == "acme"  # the fallback, tried last
    assert response.headers["x-tollgate-billing-owner"] == "acme/acct-7"
    assert response.headers["x-tollgate-attempts"] == "4"  # each provider twice (1 retry)


def test_models_carry_a_request_id_and_one_can_be_retrieved(proxy):
    listed = proxy.client().models.with_raw_response.list()
    assert listed.headers["x-request-id"].startswith("req_")
    model = proxy.client().models.retrieve("gpt-image-2")
    assert (model.id, model.object, model.owned_by) == ("gpt-image-2", "model", "platform-team")
    with pytest.raises(openai.NotFoundError) as caught:
        proxy.client().models.retrieve("gpt-9")
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    assert "The model 'gpt-9' does not exist" in caught.value.message
    assert caught.value.response.headers["x-request-id"].startswith("req_")


def test_a_moderation_refusal_returns_the_upstreams_error_without_retry_or_fallback(proxy, simulator):
    prompt = f"something refused {marker('moderation')}"
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().images.generate(model="gpt-image-2", prompt=prompt, quality="low")
    error = caught.value
    assert error.code == "moderation_blocked"
    assert error.body["type"] == "image_generation_user_error"
    assert error.response.headers["x-tollgate-attempts"] == "1"
    assert error.response.headers["x-tollgate-provider"] == "openai"
    assert len(upstream_requests(simulator, marker_id(prompt))) == 1


def test_an_invalid_size_from_upstream_names_size(proxy):
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().images.generate(model="gpt-image-2", prompt="x", size="1000x1000", quality="low")
    assert caught.value.param == "size" and "1000x1000" in caught.value.message


@pytest.mark.timeout(20)
def test_a_stream_cut_midway_raises_in_the_client_instead_of_hanging(proxy):
    stream = proxy.client().chat.completions.create(
        model="gpt-5.4-mini",
        stream=True,
        messages=[{"role": "user", "content": f"tell me a story {marker('cut_stream', upstream='openai')}"}],
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received, "the events before the cut were relayed"
    assert "broke off the stream" in caught.value.message


@pytest.mark.timeout(20)
def test_an_image_stream_cut_midway_raises_too(proxy):
    stream = proxy.client().images.generate(
        model="gpt-image-2", prompt=f"a heron {marker('cut_stream')}", quality="low", stream=True, partial_images=3
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_an_unknown_model_is_a_404_listing_the_routes(proxy):
    with pytest.raises(openai.NotFoundError) as caught:
        proxy.client().chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"
    assert "gpt-5.4, gpt-5.4-mini, gpt-image-2, text-embedding-3-small" in caught.value.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model": "gpt-5.4-mini", "messages": [', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"", "body is empty"),
        (b'{"messages": []}', "`model` is required"),
        (b'{"model": "gpt-5.4-mini", "stream": "yes"}', "Invalid 'stream': expected a boolean"),
    ],
)
def test_a_malformed_request_is_a_400_that_says_what_to_change(proxy, body, expected):
    response = httpx.post(
        f"{proxy.url}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert expected in error["message"] and error["type"] == "invalid_request_error"
    assert response.headers["x-request-id"].startswith("req_")


def test_a_bad_image_field_type_is_a_400_naming_the_field(proxy):
    response = httpx.post(
        f"{proxy.url}/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x", "n": "two"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "n"


def test_an_oversized_body_is_a_413(proxy):
    big_prompt = "x" * (3 * 1024 * 1024)  # the test proxy takes 2 MiB
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().images.generate(model="gpt-image-2", prompt=big_prompt)
    assert caught.value.status_code == 413
    assert "server.max_body_mb" in caught.value.message


def test_unknown_paths_answer_in_openais_error_shape(proxy):
    response = httpx.post(f"{proxy.url}/v1/audio/speech", json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"
    assert httpx.get(f"{proxy.url}/v1/chat/completions").status_code == 405


def test_the_clients_key_never_reaches_an_upstream(proxy, simulator):
    client = proxy.client(default_headers={"OpenAI-Organization": "org-client", "OpenAI-Project": "proj-client"})
    client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    client.images.generate(model="gpt-image-2", prompt=f"x {marker('unavailable', upstream='openai')}", quality="low")
    seen = upstream_requests(simulator)
    assert seen
    for request in seen:
        assert CLIENT_KEY not in str(request["headers"])
        assert "openai-organization" not in request["headers"] and "openai-project" not in request["headers"]
    assert {r["headers"].get("authorization") for r in seen} <= {
        f"Bearer {OPENAI_UPSTREAM_KEY}",
        f"Bearer {ACME_UPSTREAM_KEY}",
        None,
    }
