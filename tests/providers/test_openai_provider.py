"""The OpenAI provider and its transport against a live simulator: what comes
back for each kind of answer, and which failure each broken answer becomes."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from providers.errors import BadUpstreamResponse, UnsupportedByProvider, UpstreamConnectError, UpstreamTimeout
from providers.openai import AzureOpenAIProvider, OpenAIProvider
from providers.types import Call, JsonBody, StoredResource, Surface
from proxy.serving.simulated_upstreams import InProcessSimulator


@pytest.fixture(scope="module")
def simulator_url():
    simulator = InProcessSimulator()
    yield simulator.start()
    simulator.stop()


def chat_call(text: str, *, stream: bool = False, model: str = "gpt-5.4-mini") -> Call:
    fields = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    return Call(
        request_id="req_t",
        surface=Surface.CHAT,
        model=model,
        stream=stream,
        body=JsonBody(orjson.dumps(fields), fields),
    )


@pytest.fixture
async def provider(simulator_url):
    provider = OpenAIProvider("openai", f"{simulator_url}/openai/v1", api_key="sk-up")
    yield provider
    await provider.aclose()


async def test_a_success_comes_back_as_bytes_with_the_upstreams_headers(provider):
    reply = await provider.send(chat_call("hello"), "gpt-5.4-mini", timeout_s=5)
    assert reply.status == 200 and reply.request_id.startswith("req_sim_")
    assert orjson.loads(bytes(reply.body))["object"] == "chat.completion"


async def test_the_upstream_model_name_replaces_the_clients(provider):
    reply = await provider.send(chat_call("hello", model="my-alias"), "gpt-5.4-mini", timeout_s=5)
    assert orjson.loads(bytes(reply.body))["model"] == "gpt-5.4-mini"


async def test_an_error_status_is_a_reply_not_an_exception(provider):
    reply = await provider.send(chat_call("[sim fault=server_error]"), "gpt-5.4-mini", timeout_s=5)
    assert reply.status == 500 and orjson.loads(bytes(reply.body))["error"]["code"] == "server_error"


async def test_a_stream_comes_back_as_chunks(provider):
    reply = await provider.send(chat_call("hello", stream=True), "gpt-5.4-mini", timeout_s=5)
    body = b"".join([chunk async for chunk in reply.stream])
    await reply.aclose()
    assert body.rstrip().endswith(b"data: [DONE]")


async def test_no_answer_in_time_is_a_timeout(provider):
    with pytest.raises(UpstreamTimeout) as caught:
        await provider.send(chat_call("[sim fault=timeout delay=3]"), "gpt-5.4-mini", timeout_s=0.3)
    assert "within 0.3s" in caught.value.message


async def test_a_body_cut_short_is_a_broken_connection_not_a_timeout(provider):
    with pytest.raises(UpstreamConnectError):
        await provider.send(chat_call("[sim fault=cut_stream]"), "gpt-5.4-mini", timeout_s=5)


async def test_a_stream_cut_short_raises_a_connection_failure_while_reading(provider):
    reply = await provider.send(chat_call("[sim fault=cut_stream]", stream=True), "gpt-5.4-mini", timeout_s=5)
    with pytest.raises(UpstreamConnectError):
        async for _ in reply.stream:
            pass
    await reply.aclose()


async def test_a_success_body_that_is_not_json_is_a_bad_response(provider):
    with pytest.raises(BadUpstreamResponse):
        await provider.send(chat_call("[sim fault=malformed]"), "gpt-5.4-mini", timeout_s=5)


async def test_nobody_listening_is_a_connection_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    provider = OpenAIProvider("gone", f"http://127.0.0.1:{port}/v1", api_key="sk-up")
    with pytest.raises(UpstreamConnectError) as caught:
        await provider.send(chat_call("hello"), "gpt-5.4-mini", timeout_s=2)
    assert "sk-up" not in caught.value.message
    await provider.aclose()


async def test_azure_puts_the_deployment_in_the_url_and_the_key_in_api_key(simulator_url):
    provider = AzureOpenAIProvider("azure", f"{simulator_url}/azure", api_version="2025-04-01-preview", api_key="k")
    call = chat_call("hello")
    assert provider.url_for(call, "my-deployment") == (
        f"{simulator_url}/azure/openai/deployments/my-deployment/chat/completions?api-version=2025-04-01-preview"
    )
    assert provider.auth_headers("k") == {"api-key": "k"}
    reply = await provider.send(call, "my-deployment", timeout_s=5)
    assert reply.status == 200
    await provider.aclose()


def stored(method: str, path: str, query: str = "") -> Call:
    return Call(
        request_id="req_t",
        surface=Surface.RESPONSES,
        model="gpt-5.4",
        stream=False,
        body=JsonBody(b"", {}),
        resource=StoredResource(method, path, query),
    )


async def test_a_stored_response_is_reached_by_its_path_with_the_query_as_it_came(provider):
    fields = {"model": "gpt-5.4", "input": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]}
    made = await provider.send(
        Call("req_t", Surface.RESPONSES, "gpt-5.4", False, JsonBody(orjson.dumps(fields), fields)), "gpt-5.4", 5
    )
    response_id = orjson.loads(bytes(made.body))["id"]
    retrieved = await provider.send(stored("GET", f"responses/{response_id}"), "gpt-5.4", timeout_s=5)
    assert retrieved.status == 200 and orjson.loads(bytes(retrieved.body))["id"] == response_id
    page = await provider.send(stored("GET", f"responses/{response_id}/input_items", "order=asc&limit=1"), "x", 5)
    assert [item["content"][0]["text"] for item in orjson.loads(bytes(page.body))["data"]] == ["one"]
    deleted = await provider.send(stored("DELETE", f"responses/{response_id}"), "gpt-5.4", timeout_s=5)
    assert orjson.loads(bytes(deleted.body))["deleted"] is True


async def test_azure_reaches_a_stored_response_on_the_resource_not_the_deployment(simulator_url):
    provider = AzureOpenAIProvider("azure", f"{simulator_url}/azure", api_version="2025-04-01-preview", api_key="k")
    fields = {"input": "hello"}
    made = await provider.send(
        Call("req_t", Surface.RESPONSES, "gpt-5.4", False, JsonBody(orjson.dumps(fields), fields)), "my-gpt", 5
    )
    response_id = orjson.loads(bytes(made.body))["id"]
    call = stored("GET", f"responses/{response_id}/input_items", "limit=5")
    assert provider.resource_url(call.resource) == (
        f"{simulator_url}/azure/openai/responses/{response_id}/input_items?api-version=2025-04-01-preview&limit=5"
    )
    reply = await provider.send(call, "my-gpt", timeout_s=5)
    assert reply.status == 200 and orjson.loads(bytes(reply.body))["data"][0]["content"][0]["text"] == "hello"
    await provider.aclose()


async def test_a_litellm_provider_says_it_cannot_reach_stored_responses():
    from providers.litellm import LiteLLMProvider

    provider = LiteLLMProvider("anthropic", api_key="sk-vendor", base_url=None)
    with pytest.raises(UnsupportedByProvider) as refused:
        await provider.send(stored("GET", "responses/resp_1"), "anthropic/claude", timeout_s=5)
    assert refused.value.status == 400 and refused.value.code == "unsupported_by_provider"
    assert "Provider 'anthropic' (kind litellm) cannot serve GET /v1/responses/resp_1" in refused.value.message


@pytest.mark.parametrize("answered", [b"", b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"], ids=["nothing", "half"])
async def test_a_call_cancelled_mid_answer_closes_its_upstream_connection_at_once(answered):
    """The client hung up: the upstream's connection is closed then, not kept for the pool
    (the rest of an unread answer on it would be read as the next request's)."""
    asked, closed = asyncio.Event(), asyncio.Event()

    async def silent_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answered)
        asked.set()
        await reader.read()  # until the proxy closes its end
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent_upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    provider = OpenAIProvider("silent", f"http://127.0.0.1:{port}/v1", api_key="sk-up")
    sending = asyncio.create_task(provider.send(chat_call("hello"), "gpt-5.4-mini", timeout_s=30))
    await asyncio.wait_for(asked.wait(), 5)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    await asyncio.wait_for(closed.wait(), 2)
    await provider.aclose()
    server.close()


class PausingUpstream:
    """A raw HTTP upstream on a loopback port of the test's own loop: it answers with
    `head` and the `parts` of the body, pausing `pause_s` after each."""

    def __init__(self, head: bytes, parts: list[bytes], pause_s: float) -> None:
        self.head, self.parts, self.pause_s = head, parts, pause_s
        self.answering: set[asyncio.Task] = set()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def __aexit__(self, *exc_info) -> None:
        for task in self.answering:
            task.cancel()
        await asyncio.gather(*self.answering, return_exceptions=True)
        self.server.close()
        await self.server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.answering.add(asyncio.current_task())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
            await reader.readexactly(int(length.split(b":")[1]))
            writer.write(self.head)
            for part in self.parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(self.pause_s)
        finally:
            writer.close()


WHOLE = orjson.dumps({"object": "chat.completion", "filler": "x" * 300_000, "usage": {"prompt_tokens": 1}})


def whole_head(length: int) -> bytes:
    return f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n".encode()


async def test_a_whole_answer_is_kept_in_the_chunks_it_was_read_in():
    parts = [WHOLE[:100_000], WHOLE[100_000:200_000], WHOLE[200_000:]]
    async with PausingUpstream(whole_head(len(WHOLE)), parts, pause_s=0.02) as url:
        provider = OpenAIProvider("openai", url, api_key="sk-up")
        reply = await provider.send(chat_call("hello"), "gpt-5.4-mini", timeout_s=5)
        await provider.aclose()
    assert reply.status == 200 and len(reply.body) == len(WHOLE) and len(reply.body.chunks) >= 3
    assert b"".join(reply.body.chunks) == WHOLE == bytes(reply.body)


async def test_a_whole_answer_that_stops_halfway_is_a_timeout_at_the_deadline():
    # No per-read timer on a whole answer: the exchange's deadline bounds the wait.
    async with PausingUpstream(whole_head(len(WHOLE)), [WHOLE[:1000]], pause_s=10) as url:
        provider = OpenAIProvider("openai", url, api_key="sk-up")
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeout) as caught:
            await provider.send(chat_call("hello"), "gpt-5.4-mini", timeout_s=0.3)
        await provider.aclose()
    assert "within 0.3s" in caught.value.message and asyncio.get_running_loop().time() - started < 2


async def test_a_stream_that_stops_sending_is_a_timeout_mid_stream():
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    event = b'data: {"choices": []}\n\n'
    async with PausingUpstream(head, [b"%x\r\n%s\r\n" % (len(event), event)], pause_s=10) as url:
        provider = OpenAIProvider("openai", url, api_key="sk-up")
        reply = await provider.send(chat_call("hello", stream=True), "gpt-5.4-mini", timeout_s=0.3)
        with pytest.raises(UpstreamTimeout) as caught:
            async for _ in reply.stream:
                pass
        await reply.aclose()
        await provider.aclose()
    assert "mid-stream" in caught.value.message
