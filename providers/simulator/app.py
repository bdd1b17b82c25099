"""The simulator's ASGI app: routing, auth, the request log, fault injection,
and dispatch to one handler per OpenAI endpoint."""

from __future__ import annotations

import os
import time
from functools import partial
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .api_call import ApiCall, Handler, Upload
from .billing import BillingBook
from .catalog import list_models
from .chat_api import create_chat_completion
from .embeddings_api import create_embeddings
from .errors import SimError
from .faults import ERROR_FAULTS, FaultBook, apply_output_fault, fault_error, hold
from .image_api import create_image, edit_image
from .images import ImageCache
from .json_bytes import dumps, loads
from .markers import HEADER, request_markers
from .organization_api import organization_report
from .paths import Target, parse_path
from .replies import BodyReply, Headers, NoReply, Reply, StreamReply, transmit
from .request_log import Entry, RequestLog, multipart_summary
from .response_store import ResponseStore
from .responses_api import create_response
from .stored_responses_api import conversation_handler, stored_response_handler

# The endpoints that keep nothing between requests; the Responses endpoints keep
# their responses in the simulator's `ResponseStore`.
HANDLERS: Final[dict[str, tuple[str, Handler]]] = {
    "images/generations": ("POST", create_image),
    "images/edits": ("POST", edit_image),
    "chat/completions": ("POST", create_chat_completion),
    "embeddings": ("POST", create_embeddings),
    "models": ("GET", list_models),
}

# Bodies up to this size are kept in the request log (multipart: the text fields,
# always); larger ones would make the bounded log hold megabytes of image data.
LOGGED_BODY_LIMIT: Final = 32 * 1024

_NO_KEY_MESSAGE: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_BAD_JSON_MESSAGE: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


class Simulator:
    """An OpenAI-compatible upstream for tests, demos and benchmarks."""

    def __init__(self, *, log_limit: int = 1000, images: ImageCache | None = None) -> None:
        self.requests = RequestLog(log_limit)
        self.faults = FaultBook()
        self.images = images or ImageCache()
        self.billing = BillingBook()
        self.responses = ResponseStore()
        self._handlers = {
            **HANDLERS,
            "responses": ("POST", partial(create_response, store=self.responses)),
            "conversations": ("POST", conversation_handler(self.responses)),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/_sim/"):
            await transmit(send, self._admin(scope["method"], path, scope["query_string"]), [])
            return
        request_id = "req_sim_" + os.urandom(12).hex()
        target = parse_path(path)
        upstream = target.upstream if target else "default"
        request = Request(scope, receive)
        body = await request.body()
        entry = self.requests.record(
            request_id=request_id,
            method=scope["method"],
            path=path,
            query=scope["query_string"].decode("latin-1"),
            upstream=upstream,
            raw_headers=scope["headers"],
            body_size=len(body),
        )
        reply = await self._answer(request, body, target, request_id, entry, receive)
        entry["status"] = reply.status
        headers: Headers = [(b"x-request-id", request_id.encode()), (b"x-simulator-upstream", upstream.encode())]
        delivery = await transmit(send, reply, headers, receive)
        if delivery is not None:
            entry["stream"] = delivery.as_dict()

    async def _answer(
        self, request: Request, body: bytes, target: Target | None, request_id: str, entry: Entry, receive: Receive
    ) -> Reply:
        try:
            method, path = request.method, request.scope["path"]
            if target is None:
                raise SimError(404, f"Invalid URL ({method} {path})")
            if target.endpoint.startswith("organization/") and method == "GET":
                return self._organization(request, target)
            handler = self._handler(method, path, target.endpoint, request.scope["query_string"])
            # Credentials first: a request the proxy sent without a key is refused as the
            # real upstream would refuse it, whatever fault its text asks for.
            if not _authorized(request):
                raise SimError(401, _NO_KEY_MESSAGE, code="invalid_api_key")
            call = await _parse_call(request, body, target, request_id, entry)
            markers = request_markers(request.headers.get(HEADER), call.fields)
            entry["markers"] = [found.source for found in markers]
            marker = self.faults.select(markers, target.upstream)
            if marker is None:
                return self._billed(target, await handler(call, self.images))
            entry["fault"], entry["marker"] = marker.fault, marker.text
            if marker.wait and marker.fault is None:
                # Only slow: the work is done and billed even if the client leaves meanwhile.
                reply = self._billed(target, await handler(call, self.images))
                return apply_output_fault(marker, reply) if await hold(marker.wait, receive) else NoReply()
            if marker.wait and not await hold(marker.wait, receive):
                return NoReply()  # a hung upstream (`timeout`): nothing made, nothing billed
            if marker.fault in ERROR_FAULTS:
                size = call.fields.get("size")
                raise fault_error(marker, request_id, size if isinstance(size, str) else None)
            return apply_output_fault(marker, self._billed(target, await handler(call, self.images)))
        except SimError as error:
            headers = [(name.encode(), value.encode()) for name, value in error.headers.items()]
            return BodyReply(error.status, error.body(), headers=headers)

    def _billed(self, target: Target, reply: Reply) -> Reply:
        if isinstance(reply, BodyReply | StreamReply) and reply.generation is not None:
            self.billing.bill(target.upstream, reply.generation)
        return reply

    def _organization(self, request: Request, target: Target) -> Reply:
        """The organization Costs and Usage reports: an admin key in OpenAI, any key here."""
        if not _authorized(request):
            raise SimError(401, _NO_KEY_MESSAGE, code="invalid_api_key")
        report = organization_report(
            target.endpoint, target.upstream, request.scope["query_string"], self.billing, time.time()
        )
        return BodyReply(200, dumps(report))

    def _admin(self, method: str, path: str, query_string: bytes) -> Reply:
        """`GET /_sim/requests[?upstream=name]` and `POST /_sim/reset`."""
        if path == "/_sim/requests" and method == "GET":
            upstream = parse_qs(query_string.decode("latin-1")).get("upstream", [None])[0]
            return BodyReply(200, dumps({"requests": self.requests.entries(upstream)}))
        if path == "/_sim/reset" and method == "POST":
            self.requests.clear()
            self.faults.reset()
            self.billing.clear()
            self.responses.clear()
            return BodyReply(200, dumps({"reset": True}))
        return BodyReply(404, SimError(404, f"Invalid URL ({method} {path})").body())

    def _handler(self, method: str, path: str, endpoint: str, query: bytes) -> Handler:
        route = self._handlers.get(endpoint)
        if route is not None and route[0] == method:
            return route[1]
        stored = stored_response_handler(method, endpoint, query, self.responses)
        if stored is None:
            raise SimError(404, f"Invalid URL ({method} {path})")
        return stored


def _authorized(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return True
    return bool(request.headers.get("api-key", "").strip())


async def _parse_call(request: Request, body: bytes, target: Target, request_id: str, entry: Entry) -> ApiCall:
    entry["endpoint"] = target.endpoint
    uploads: list[Upload] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        fields, uploads = await _read_form(request, entry)
    else:
        # Only the create endpoints take a body; the stored-response ones ignore any.
        fields = {} if request.method != "POST" or target.endpoint.startswith("responses/") else _json_fields(body)
    model = fields.get("model")
    model = model if isinstance(model, str) and model else target.deployment
    entry["model"] = model
    if len(body) <= LOGGED_BODY_LIMIT or uploads:
        entry["fields"] = fields
    return ApiCall(target.endpoint, target.upstream, request_id, model, fields, uploads)


def _json_fields(body: bytes) -> dict[str, Any]:
    try:
        parsed = loads(body)
    except ValueError:
        raise SimError(400, _BAD_JSON_MESSAGE) from None
    if not isinstance(parsed, dict):
        raise SimError(400, _BAD_JSON_MESSAGE)
    return parsed


async def _read_form(request: Request, entry: Entry) -> tuple[dict[str, Any], list[Upload]]:
    """Text fields and file parts of a multipart body (the body is already read)."""
    fields: dict[str, Any] = {}
    uploads: list[Upload] = []
    try:
        async with request.form(max_files=64) as form:
            names = [name for name, _ in form.multi_items()]
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    uploads.append(Upload(name, value.filename, value.content_type, await value.read()))
                else:
                    fields[name] = value
    except MultiPartException as error:
        raise SimError(400, f"Could not parse the multipart body: {error.message}") from None
    entry["multipart"] = multipart_summary(names, uploads)
    return fields, uploads


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
