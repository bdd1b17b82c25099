"""The proxied requests' own way through the app: `POST /v1/<surface>` is served as raw
ASGI, without Starlette's router, middleware stack, exception handlers and response
objects, which cost about a tenth of a request's CPU at chat c=64 (bench/). What they
did for these requests is done here the same way: the request id (RequestIds), the
gateway pinned (PinGateway), errors in OpenAI's shape with the id (render_error), the
whole answer with its content-type and length (sent in the chunks it arrived in), and
the work after it once it is sent.

Everything else takes Starlette's way: other paths and methods, a request before the
app has started, and every request while `server.cors` is on (CORS stays its part).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from providers.answer_body import AnswerBody
from providers.errors import ProxyError
from providers.types import Surface

from ..errors import InternalError
from ..serving.answers import Answered, Estimated
from ..serving.serve import Asked, Serving, serve
from .ids import new_request_id
from .intake import estimate_only, header, purpose, read_call
from .relay import RelayResponse
from .whole_answers import LENGTH

log = logging.getLogger("tollgate")

SURFACES = {f"/v1/{surface.path}": surface for surface in Surface}


def takes(scope: Scope) -> Surface | None:
    """The surface of a request this way serves, or None for Starlette's way."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    return SURFACES.get(scope["path"])


async def serve_direct(app: ASGIApp, surface: Surface, scope: Scope, receive: Receive, send: Send) -> bool:
    """Serve a proxied request; False (nothing sent) when it must take Starlette's way."""
    held = getattr(app.state, "tollgate", None)  # type: ignore[attr-defined]  # a Starlette app
    if held is None or held.gateway.config.server.cors is not None:
        return False
    gateway = held.gateway  # the one current now: this request keeps it to its last byte
    request_id = new_request_id()
    scope["app"] = app
    scope.setdefault("state", {}).update(request_id=request_id, gateway=gateway)
    request = Request(scope, receive)
    gateway.enter()
    try:
        asked = Asked(
            surface,
            request_id,
            header(request, "authorization"),
            lambda: read_call(request, surface, request_id, max_body_bytes=gateway.max_body_bytes),
            estimate_only=estimate_only(request),
            purpose=purpose(request),
        )
        try:
            answer = await serve(asked, Serving(gateway, held.ledger, held.background, held.files, held.metrics))
        except ProxyError as error:
            headers = {"x-request-id": request_id, **error.headers}
            await _send_whole(send, error.status, headers, AnswerBody.of(error.body()))
            return True
        except Exception as exc:  # serve() renders its own failures: this is one outside it
            log.error("unexpected error outside a request handler", exc_info=exc, extra={"request_id": request_id})
            error = InternalError(f"Tollgate failed (request id {request_id}); it has been logged.")
            await _send_whole(send, error.status, {"x-request-id": request_id}, AnswerBody.of(error.body()))
            return True
        if isinstance(answer, Answered):
            reply = answer.reply
            await _send_whole(send, reply.status, answer.headers, reply.body, reply.content_type)
            if answer.after is not None:
                await answer.after()
        elif isinstance(answer, Estimated):
            await JSONResponse(answer.document, headers=answer.headers)(scope, receive, send)
        else:
            reply = answer.reply
            relay = RelayResponse(
                answer.relay, status_code=reply.status, headers=answer.headers, media_type=reply.content_type
            )
            await relay(scope, receive, send)
        return True
    finally:
        gateway.leave()


async def _send_whole(
    send: Send, status: int, headers: dict[str, str], body: AnswerBody, content_type: str = "application/json"
) -> None:
    """What Starlette's `Response` sends: the headers, lower-cased, with the whole body's
    length; then the body, a message per chunk as it came from the upstream, so a large
    answer is never joined into one buffer (the relay's way: bench/README.md)."""
    if content_type.startswith("text/") and "charset=" not in content_type.lower():
        content_type += "; charset=utf-8"
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    start = {"type": "http.response.start", "status": status, "headers": raw}
    if not (status < 200 or status in (204, 304)):  # answers that have no body have no length
        raw.append((b"content-length", str(len(body)).encode()))
        start[LENGTH] = len(body)  # the head goes with the body, in one write (whole_answers.py)
    raw.append((b"content-type", content_type.encode("latin-1")))
    await send(start)
    *leading, last = body.chunks or (b"",)
    for chunk in leading:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": last})
