"""CORS, for browsers that call the proxy directly: off unless `server.cors` says
which origins may. Each request follows the `server.cors` of the gateway it runs
on, so a reload changes it like any other setting; off, it costs one lookup.

Starlette's CORSMiddleware does the work; a refused preflight is answered in
OpenAI's error shape, like every other refusal, instead of its plain text.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config.schema import CorsSettings
from ..errors import InvalidRequest

ALLOW_METHODS = ("GET", "POST", "DELETE")
# What a browser's script may read of an answer: Tollgate's own headers and the retry hint.
EXPOSE_HEADERS = (
    "x-request-id",
    "x-tollgate-route",
    "x-tollgate-provider",
    "x-tollgate-billing-owner",
    "x-tollgate-attempts",
    "x-tollgate-price-table",
    "x-tollgate-price-source",
    "x-tollgate-cost-usd",
    "x-tollgate-upstream-request-id",
    "retry-after",
)


class Cors:
    """Runs after PinGateway, which has put this request's gateway in its scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._built: tuple[CorsSettings, ASGIApp] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = scope["state"]["gateway"].config.server.cors if scope["type"] == "http" else None
        if settings is None:
            await self.app(scope, receive, send)
            return
        await self._middleware(settings)(scope, receive, send)

    def _middleware(self, settings: CorsSettings) -> ASGIApp:
        if self._built is None or self._built[0] != settings:  # the first request after a reload that changed it
            middleware = _OpenAIShapedCors(
                self.app,
                allow_origins=settings.allow_origins,
                allow_methods=ALLOW_METHODS,
                allow_headers=settings.allow_headers,
                expose_headers=EXPOSE_HEADERS,
            )
            self._built = (settings, middleware)
        return self._built[1]


class _OpenAIShapedCors(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code < 400:
            return answer
        refused = bytes(answer.body).decode().removeprefix("Disallowed CORS ")
        origin = request_headers["origin"][:100]
        error = InvalidRequest(
            f"CORS preflight refused: {refused} not allowed for origin {origin!r}. The operator sets what "
            f"browsers may do in server.cors (allow_origins, allow_headers); methods: {', '.join(ALLOW_METHODS)}.",
            code="cors_refused",
        )
        headers = {
            name: value for name, value in answer.headers.items() if name not in ("content-length", "content-type")
        }
        return Response(error.body(), status_code=400, headers=headers, media_type="application/json")
