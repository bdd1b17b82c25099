"""OpenAI, and every upstream that speaks its HTTP API (gateways, resellers, the
simulator): the client's body goes through as bytes, the answer comes back as bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import aiohttp

from .answer_body import AnswerBody
from .base import Provider, UpstreamReply
from .errors import BadUpstreamResponse
from .transport import Pool, timeouts, upstream_failure
from .types import Call, StoredResource


class OpenAIProvider(Provider):
    """Speaks OpenAI's HTTP API to `base_url` with one pooled client for its lifetime."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key: str | None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(name)
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "accept": "application/json, text/event-stream",
            **(headers or {}),
            **self.auth_headers(api_key),
        }
        self._pool = Pool(max_connections=max_connections)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def url_for(self, call: Call, model: str) -> str:
        return f"{self.base_url}/{call.surface.path}"

    def resource_url(self, resource: StoredResource) -> str:
        return f"{self.base_url}/{resource.path}" + (f"?{resource.query}" if resource.query else "")

    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        if call.resource is None:
            method, url, content = "POST", self.url_for(call, model), call.body.for_model(model)
        else:  # a stored response: the path names it; a body, if any, goes as it came
            method, url, content = call.resource.method, self.resource_url(call.resource), call.body.raw
        # Only our headers: the client's Authorization and organisation never travel upstream.
        headers = {**self._headers, "content-type": call.body.content_type}
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._pool.session().request(
                    method,
                    url,
                    data=content or None,
                    headers=headers,
                    allow_redirects=False,
                    timeout=timeouts(timeout_s, streaming=call.stream),
                )
                if call.stream and 200 <= response.status < 300:
                    reply = UpstreamReply(
                        response.status,
                        response.headers,
                        stream=self._stream(response, timeout_s),
                        closer=_closer(response),
                    )
                    response = None  # the stream's reader closes it
                    return reply
                body = await _read_whole(response)
        except BaseException as exc:
            if response is not None:
                response.close()  # cut off mid-answer (or cancelled: the client hung up): not back to the pool
            failure = (
                upstream_failure(exc, self.name, timeout_s, streaming=False) if isinstance(exc, Exception) else None
            )
            if failure is None:
                raise
            raise failure from exc
        status = response.status
        if 200 <= status < 300 and status != 204 and not _looks_like_json(body):
            raise BadUpstreamResponse(f"provider '{self.name}' answered {status} with a body that is not JSON")
        return UpstreamReply(status, response.headers, body=body)

    async def _stream(self, response: aiohttp.ClientResponse, timeout_s: float) -> AsyncIterator[bytes]:
        try:
            # iter_any hands over what arrived, as it arrives: SSE events are not held back.
            async for chunk in response.content.iter_any():
                yield chunk
        except Exception as exc:
            failure = upstream_failure(exc, self.name, timeout_s, streaming=True)
            if failure is None:
                raise
            raise failure from exc

    @property
    def closed(self) -> bool:
        """Its connections were released (`aclose`): a reload dropped it, or the proxy stopped."""
        return self._pool.closed

    async def aclose(self) -> None:
        await self._pool.aclose()


def _closer(response: aiohttp.ClientResponse):
    async def close() -> None:
        # A body read to the end returns its connection to the pool; one cut short closes it.
        response.release()

    return close


async def _read_whole(response: aiohttp.ClientResponse) -> AnswerBody:
    """The whole body as the chunks aiohttp received it in: `read()` would join them
    into one `bytes`, copying every byte of a 2 MB answer once or twice."""
    chunks = []
    while True:
        chunk, end_of_http_chunk = await response.content.readchunk()
        if chunk:
            chunks.append(chunk)
        elif not end_of_http_chunk:  # (b"", False): the end of the body
            break
    response.release()  # read to its end: the connection goes back to the pool
    return AnswerBody(chunks)


def _looks_like_json(body: AnswerBody) -> bool:
    """A cheap check that a success body is a whole JSON object. Parsing a 2 MB
    image body here would cost more than relaying it; truncation shows at the ends,
    so only the ends are looked at."""
    return body.head(64).lstrip()[:1] == b"{" and body.tail(64).rstrip()[-1:] == b"}"


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI: the deployment is in the URL, the version in the query, the key in `api-key`."""

    def __init__(self, name: str, base_url: str, *, api_version: str, **kwargs) -> None:
        self.api_version = api_version
        super().__init__(name, base_url, **kwargs)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"api-key": api_key} if api_key else {}

    def url_for(self, call: Call, model: str) -> str:
        return f"{self.base_url}/openai/deployments/{model}/{call.surface.path}?api-version={self.api_version}"

    def resource_url(self, resource: StoredResource) -> str:
        # Azure keeps responses per resource, not per deployment.
        query = f"&{resource.query}" if resource.query else ""
        return f"{self.base_url}/openai/{resource.path}?api-version={self.api_version}{query}"
