"""The simulator as a real server (`python -m providers.simulator`) on a loopback
port, driven by the official openai SDK, as the proxy's upstream will be."""

from __future__ import annotations

import base64
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam
from PIL import Image

from providers.image_tokens import image_input_tokens, image_output_tokens, text_tokens

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "providers.simulator", "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/_sim/requests", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    startup_log = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"simulator did not start:\n{startup_log}")
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    # The intentional cuts must not read as app errors in the server's log.
    assert b"Traceback" not in output and b"without completing response" not in output, output.decode()


@pytest.fixture(autouse=True)
def fresh_simulator(simulator_url: str) -> None:
    httpx.post(f"{simulator_url}/_sim/reset").raise_for_status()


def sdk(simulator_url: str, upstream: str = "", **options: Any) -> OpenAI:
    prefix = f"/{upstream}" if upstream else ""
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 20)
    return OpenAI(base_url=f"{simulator_url}{prefix}/v1", api_key="sk-test", **options)


def received(simulator_url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{simulator_url}/_sim/requests").json()["requests"]


def decode(b64: str) -> Image.Image:
    picture = Image.open(io.BytesIO(base64.b64decode(b64)))
    picture.load()
    return picture


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


# ---- the APIs, through the SDK ---------------------------------------------------------------------


def test_generate_images(simulator_url: str) -> None:
    result = sdk(simulator_url).images.generate(
        model="gpt-image-2",
        prompt="a red bicycle",
        n=2,
        size="2048x1152",
        quality="low",
        output_format="webp",
    )
    assert result.size == "2048x1152" and result.quality == "low" and result.output_format == "webp"
    assert result.data is not None and len(result.data) == 2
    for item in result.data:
        assert item.b64_json is not None
        picture = decode(item.b64_json)
        assert (picture.format, picture.size) == ("WEBP", (2048, 1152))
    assert result.usage is not None
    assert result.usage.output_tokens == 2 * image_output_tokens("gpt-image-2", "2048x1152", "low")
    assert result.usage.input_tokens_details.text_tokens == text_tokens("a red bicycle")
    assert result.usage.output_tokens_details is None


def test_generate_image_stream(simulator_url: str) -> None:
    stream = sdk(simulator_url).images.generate(
        model="gpt-image-2",
        prompt="a kite",
        stream=True,
        partial_images=3,
        quality="high",
        size="1536x1024",
    )
    events = list(stream)
    assert [event.type for event in events] == ["image_generation.partial_image"] * 3 + ["image_generation.completed"]
    completed = events[-1]
    assert completed.type == "image_generation.completed"
    assert completed.usage.output_tokens == 5488 + 3 * 100
    assert decode(completed.b64_json).size == (1536, 1024)


def test_edit_images_with_a_mask(simulator_url: str) -> None:
    client = sdk(simulator_url)
    result = client.images.edit(
        model="gpt-image-2",
        image=[("room.png", png_bytes(1280, 720), "image/png"), ("chair.png", png_bytes(512, 512), "image/png")],
        mask=("mask.png", png_bytes(1280, 720, "RGBA"), "image/png"),
        prompt="put the chair in the room",
        output_format="jpeg",
    )
    assert result.size == "1280x720"
    assert result.data is not None and result.data[0].b64_json is not None
    picture = decode(result.data[0].b64_json)
    assert (picture.format, picture.size) == ("JPEG", (1280, 720))
    assert result.usage is not None
    assert result.usage.input_tokens_details.image_tokens == image_input_tokens(1280, 720) + image_input_tokens(
        512, 512
    )
    [entry] = received(simulator_url)
    assert entry["multipart"]["fields"].count("image[]") == 2
    assert [part["filename"] for part in entry["multipart"]["files"]] == ["room.png", "chair.png", "mask.png"]

    with pytest.raises(openai.BadRequestError) as refused:
        client.images.edit(
            model="gpt-image-2",
            image=("a.png", png_bytes(64, 64), "image/png"),
            mask=("m.png", png_bytes(32, 32, "RGBA"), "image/png"),
            prompt="p",
        )
    assert refused.value.code == "invalid_mask_image_format"


def test_edit_image_stream(simulator_url: str) -> None:
    events = list(
        sdk(simulator_url).images.edit(
            model="gpt-image-2",
            image=("a.png", png_bytes(1024, 1024), "image/png"),
            prompt="p",
            stream=True,
            partial_images=1,
        )
    )
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]


def test_responses_with_the_image_tool(simulator_url: str) -> None:
    response = sdk(simulator_url).responses.create(
        model="gpt-5.4",
        input="draw a lighthouse",
        tools=[{"type": "image_generation", "size": "1024x1536", "quality": "medium"}],
    )
    assert [item.type for item in response.output] == ["image_generation_call", "message"]
    call = response.output[0]
    assert call.type == "image_generation_call" and call.result is not None
    assert decode(call.result).size == (1024, 1536)
    assert "draw a lighthouse" in response.output_text
    assert response.tool_usage is not None
    assert response.tool_usage.image_gen.output_tokens == 1372
    assert response.usage is not None and response.usage.input_tokens == text_tokens("draw a lighthouse")


def test_responses_stream_ends_with_completed(simulator_url: str) -> None:
    client = sdk(simulator_url)
    events = list(
        client.responses.create(
            model="gpt-5.4",
            input="a sailboat",
            stream=True,
            tools=[{"type": "image_generation", "quality": "low", "partial_images": 2}],
        )
    )
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert sum(event.type == "response.image_generation_call.partial_image" for event in events) == 2
    final = events[-1].response
    assert final.tool_usage is not None and final.tool_usage.image_gen.output_tokens == 196 + 200
    with client.responses.stream(model="gpt-5.4", input="no tools here") as stream:
        for _ in stream:
            pass
        assembled = stream.get_final_response()
    assert "no tools here" in assembled.output_text


def test_responses_refuses_image_models(simulator_url: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(simulator_url).responses.create(model="gpt-image-2", input="draw")
    assert refused.value.param == "model"
    assert "not supported with the Responses API" in refused.value.message


def test_chat_plain_and_streamed(simulator_url: str) -> None:
    client = sdk(simulator_url)
    completion = client.chat.completions.create(model="gpt-4.1", messages=ask("route me to acme"))
    assert "route me to acme" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.prompt_tokens == text_tokens("route me to acme")
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1",
            messages=ask("stream please"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "stream please" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == text_tokens(text)


def test_embeddings_in_both_encodings(simulator_url: str) -> None:
    client = sdk(simulator_url)
    packed = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])  # SDK asks for base64
    floats = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"], encoding_format="float")
    assert [len(item.embedding) for item in packed.data] == [1536, 1536]
    assert [item.embedding for item in packed.data] == [item.embedding for item in floats.data]
    short = client.embeddings.create(model="text-embedding-3-small", input="one", dimensions=256)
    assert len(short.data[0].embedding) == 256


def test_models_and_azure_paths(simulator_url: str) -> None:
    assert "gpt-image-2" in {model.id for model in sdk(simulator_url).models.list()}
    azure = AzureOpenAI(
        azure_endpoint=f"{simulator_url}/acme", api_key="azure-key", api_version="2025-04-01-preview", max_retries=0
    )
    completion = azure.chat.completions.create(model="team-gpt", messages=ask("hi"))
    assert "team-gpt" in (completion.choices[0].message.content or "")
    entry = received(simulator_url)[-1]
    assert (entry["upstream"], entry["path"]) == ("acme", "/acme/openai/deployments/team-gpt/chat/completions")
    assert entry["headers"]["api-key"] == "azure-key"


def test_auth_and_headers(simulator_url: str) -> None:
    anonymous = httpx.post(f"{simulator_url}/openai/v1/chat/completions", json={"model": "m", "messages": ask("x")})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    raw = sdk(simulator_url, "openai").chat.completions.with_raw_response.create(model="m", messages=ask("x"))
    assert raw.headers["x-request-id"].startswith("req_sim_")
    assert raw.headers["x-simulator-upstream"] == "openai"
    assert received(simulator_url)[-1]["headers"]["authorization"] == "Bearer sk-test"


# ---- faults, as the proxy will meet them -----------------------------------------------------------


def test_times_one_fails_once_then_succeeds(simulator_url: str) -> None:
    client = sdk(simulator_url, "openai")
    messages = ask("hello [sim fault=server_error times=1 id=t42]")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4.1", messages=messages)
    assert client.chat.completions.create(model="gpt-4.1", messages=messages).choices[0].message.content


def test_upstream_targeting(simulator_url: str) -> None:
    prompt = "a cat [sim fault=unavailable upstream=openai]"
    with pytest.raises(openai.InternalServerError) as failed:
        sdk(simulator_url, "openai").images.generate(model="gpt-image-2", prompt=prompt)
    assert failed.value.status_code == 503
    result = sdk(simulator_url, "acme").images.generate(model="gpt-image-2", prompt=prompt)
    assert result.data and result.data[0].b64_json
    assert [(entry["upstream"], entry["status"]) for entry in received(simulator_url)] == [
        ("openai", 503),
        ("acme", 200),
    ]


def test_rate_limit_carries_retry_after_and_the_sdk_honours_it(simulator_url: str) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        sdk(simulator_url).chat.completions.create(model="m", messages=ask("[sim fault=rate_limit id=a]"))
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.response.headers["retry-after-ms"] == "1000"
    assert limited.value.code == "rate_limit_exceeded"

    started = time.monotonic()
    retrying = sdk(simulator_url, max_retries=2)
    retrying.chat.completions.create(model="m", messages=ask("[sim fault=rate_limit times=1 retry_after=0.4 id=b]"))
    assert time.monotonic() - started >= 0.4
    attempts = [entry for entry in received(simulator_url) if entry["marker"] or entry["status"] == 200][-2:]
    assert [entry["status"] for entry in attempts] == [429, 200]
    assert attempts[1]["headers"]["x-stainless-retry-count"] == "1"


@pytest.mark.parametrize("fault", ["moderation", "invalid_size"])
def test_user_error_faults(simulator_url: str, fault: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(simulator_url).images.generate(model="gpt-image-2", prompt=f"[sim fault={fault}]")
    assert refused.value.code == {"moderation": "moderation_blocked", "invalid_size": "invalid_value"}[fault]
    assert refused.value.type == "image_generation_user_error"


def test_cut_stream_makes_the_sdk_raise_instead_of_hanging(simulator_url: str) -> None:
    client = sdk(simulator_url, timeout=5)
    started = time.monotonic()
    chunks: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="m", messages=ask("[sim fault=cut_stream]"), stream=True):
            chunks.append(chunk)
    assert 0 < len(chunks) < 5  # roughly half of the 7 events arrived
    with pytest.raises(openai.APIConnectionError):
        list(client.responses.create(model="gpt-5.4", input="[sim fault=cut_stream]", stream=True))
    with pytest.raises(openai.APIConnectionError):
        list(
            client.images.generate(model="gpt-image-2", prompt="[sim fault=cut_stream]", stream=True, partial_images=3)
        )
    with pytest.raises(openai.APIConnectionError):
        client.images.generate(model="gpt-image-2", prompt="[sim fault=cut_stream]")
    assert time.monotonic() - started < 4


def test_malformed_answers_do_not_parse(simulator_url: str) -> None:
    client = sdk(simulator_url)
    with pytest.raises(ValueError):
        client.chat.completions.create(model="m", messages=ask("[sim fault=malformed]"))
    with pytest.raises(ValueError):
        list(client.chat.completions.create(model="m", messages=ask("[sim fault=malformed]"), stream=True))
    raw = httpx.post(
        f"{simulator_url}/v1/images/generations",
        headers={"Authorization": "Bearer k"},
        json={"model": "gpt-image-2", "prompt": "[sim fault=malformed]"},
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"


def test_timeout_fault_outlasts_the_client_and_frees_itself(simulator_url: str) -> None:
    with pytest.raises(openai.APITimeoutError):
        sdk(simulator_url, timeout=0.5).chat.completions.create(model="m", messages=ask("[sim fault=timeout]"))
    deadline = time.monotonic() + 5
    while received(simulator_url)[-1]["status"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # 499: the simulator noticed the client leave instead of holding the request for 60 s.
    assert received(simulator_url)[-1]["status"] == 499

    started = time.monotonic()
    answer = sdk(simulator_url).chat.completions.create(model="m", messages=ask("[sim fault=timeout delay=0.3]"))
    assert answer.choices and time.monotonic() - started >= 0.3


def test_interval_spaces_stream_events(simulator_url: str) -> None:
    started = time.monotonic()
    chunks = list(
        sdk(simulator_url).chat.completions.create(
            model="m", messages=ask("four words of text [sim interval=0.1]"), stream=True
        )
    )
    assert time.monotonic() - started >= 0.1 * (len(chunks) - 1)


def test_a_slow_answer_is_billed_even_when_the_client_leaves_but_a_hung_one_is_not(simulator_url: str) -> None:
    """A real upstream finishes a slow generation and bills it though the client hung up; one that
    hangs (the `timeout` fault) makes nothing. The organization Costs API shows which were billed."""
    start = int(time.time()) // 86_400 * 86_400
    for marker, upstream in (
        ("[sim delay=1.5 id=slow]", "bill-slow"),
        ("[sim fault=timeout delay=1.5 id=hung]", "bill-hung"),
    ):
        with pytest.raises(httpx.TimeoutException):
            httpx.post(
                f"{simulator_url}/{upstream}/v1/images/generations",
                json={"model": "gpt-image-2", "prompt": f"slow {marker}", "quality": "low", "size": "1024x1024"},
                headers={"Authorization": "Bearer sk-test"},
                timeout=0.3,
            )
    time.sleep(1.5)  # past the delay: the slow generation is done and billed

    def billed(upstream: str) -> list[dict[str, Any]]:
        page = httpx.get(
            f"{simulator_url}/{upstream}/v1/organization/costs",
            params={"start_time": start},
            headers={"Authorization": "Bearer sk-admin"},
        ).json()
        return page["data"][0]["results"]

    (slow,) = billed("bill-slow")
    assert slow["amount"]["value"] > 0
    assert billed("bill-hung") == []
