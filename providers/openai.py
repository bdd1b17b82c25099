"""OpenAI, and every upstream that speaks its HTTP API (gateways, resellers, the
simulator): the client's body goes through as bytes, the answer comes back as bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import httpx

from .base import Provider, UpstreamReply
from .errors import BadUpstreamResponse, UpstreamConnectError, UpstreamTimeout
from .transport import AiohttpTransport
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
        self._client = httpx.AsyncClient(
            transport=AiohttpTransport(max_connections=max_connections), follow_redirects=False
        )

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
        request = self._client.build_request(
            method,
            url,
            content=content,
            # Only our headers: the client's Authorization and organisation never travel upstream.
            headers={**self._headers, "content-type": call.body.content_type},
            timeout=timeout_s,
        )
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client.send(request, stream=True)
                if call.stream and response.is_success:
                    reply = UpstreamReply(
                        response.status_code,
                        response.headers,
                        stream=self._stream(response, timeout_s),
                        closer=response.aclose,
                    )
                    response = None  # the stream's reader closes it
                    return reply
                body = await response.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout(f"provider '{self.name}' did not answer within {timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            raise UpstreamConnectError(
                f"provider '{self.name}' could not be reached or dropped the connection ({type(exc).__name__})"
            ) from exc
        finally:
            if response is not None:
                await response.aclose()
        if response.is_success and response.status_code != 204 and not _looks_like_json(body):
            raise BadUpstreamResponse(
                f"provider '{self.name}' answered {response.status_code} with a body that is not JSON"
            )
        return UpstreamReply(response.status_code, response.headers, body=body)

    async def _stream(self, response: httpx.Response, timeout_s: float) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"provider '{self.name}' sent nothing for {timeout_s:g}s mid-stream") from exc
        except httpx.TransportError as exc:
            raise UpstreamConnectError(f"provider '{self.name}' broke off the stream ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def _looks_like_json(body: bytes) -> bool:
    """A cheap check that a success body is a whole JSON object. Parsing a 2 MB
    image body here would cost more than relaying it; truncation shows at the ends,
    so only the ends are looked at (slicing, not stripping, the whole body)."""
    return body[:64].lstrip()[:1] == b"{" and body[-64:].rstrip()[-1:] == b"}"


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
