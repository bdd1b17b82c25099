"""OpenAI, and every upstream that speaks its HTTP API (gateways, resellers, the
simulator): the client's body goes through as bytes, the answer comes back as bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from .answer_body import AnswerBody
from .base import Provider, UpstreamReply
from .errors import BadUpstreamResponse
from .http1 import Connection, Pool
from .transport import upstream_failure
from .types import Call, StoredResource


class OpenAIProvider(Provider):
    """Speaks OpenAI's HTTP API to `base_url` with one pool of connections for its lifetime."""

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
        # Sent with every request, as they are: no header of the client's travels upstream.
        fixed = {
            "accept": "application/json, text/event-stream",
            "accept-encoding": "identity",
            **{name.lower(): value for name, value in (headers or {}).items()},
            **self.auth_headers(api_key),
        }
        self._headers = tuple(fixed.items())
        self._pool = Pool(self.base_url, max_connections=max_connections)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def target_for(self, call: Call, model: str) -> str:
        """The request's path below `base_url`, with its query."""
        return f"/{call.surface.path}"

    def resource_target(self, resource: StoredResource) -> str:
        return f"/{resource.path}" + (f"?{resource.query}" if resource.query else "")

    def url_for(self, call: Call, model: str) -> str:
        return self.base_url + self.target_for(call, model)

    def resource_url(self, resource: StoredResource) -> str:
        return self.base_url + self.resource_target(resource)

    async def send(self, call: Call, model: str, timeout_s: float) -> UpstreamReply:
        if call.resource is None:
            method, target, content = "POST", self.target_for(call, model), call.body.for_model(model)
        else:  # a stored response: the path names it; a body, if any, goes as it came
            method, target, content = call.resource.method, self.resource_target(call.resource), call.body.raw
        pool = self._pool
        head = pool.head(method, target, (*self._headers, ("content-type", call.body.content_type)), len(content))
        connection: Connection | None = None
        try:
            async with asyncio.timeout(timeout_s):
                connection = await pool.acquire()
                connection.send(head, content)
                await connection.read_head()
                if call.stream and 200 <= connection.status < 300:
                    lent, connection = connection, None  # the stream's reader gives it back
                    return UpstreamReply(
                        lent.status,
                        lent.headers,
                        stream=self._stream(lent, timeout_s),
                        closer=_giving_back(pool, lent),
                    )
                chunks = await connection.read_body()
        except BaseException as exc:
            if connection is not None:
                pool.discard(connection)  # cut off mid-answer (or cancelled: the client hung up)
            failure = (
                upstream_failure(exc, self.name, timeout_s, streaming=False) if isinstance(exc, Exception) else None
            )
            if failure is None:
                raise
            raise failure from exc
        status, headers = connection.status, connection.headers
        pool.release(connection)  # read to its end: back to the pool
        body = AnswerBody(chunks)
        if 200 <= status < 300 and status != 204 and not _looks_like_json(body):
            raise BadUpstreamResponse(f"provider '{self.name}' answered {status} with a body that is not JSON")
        return UpstreamReply(status, headers, body=body)

    async def _stream(self, connection: Connection, timeout_s: float) -> AsyncIterator[bytes]:
        try:
            # What arrived, as it arrives: SSE events are not held back.
            async for chunk in connection.iter_body(timeout_s):
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


def _giving_back(pool: Pool, connection: Connection):
    async def close() -> None:
        # A body read to the end returns its connection to the pool; one cut short closes it.
        pool.release(connection)

    return close


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

    def target_for(self, call: Call, model: str) -> str:
        return f"/openai/deployments/{model}/{call.surface.path}?api-version={self.api_version}"

    def resource_target(self, resource: StoredResource) -> str:
        # Azure keeps responses per resource, not per deployment.
        query = f"&{resource.query}" if resource.query else ""
        return f"/openai/{resource.path}?api-version={self.api_version}{query}"
