"""`GET /files/{name}`: a stored image, for the admin key or the client key whose
request made it (anyone, when the proxy runs without keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ..errors import AuthenticationFailed, PermissionDenied, UnknownRoute
from ..serving.files import FILE_NAME
from ..serving.gateway import Gateway
from .admin_key import require_admin
from .app_state import app_state


async def serve_file(request: Request) -> Response:
    files = app_state(request).files
    name = request.path_params["name"]
    path = files.path_of(name) if files is not None else None
    if path is None:
        raise UnknownRoute(f"No stored file '{name}'.", code="file_not_found")
    try:
        require_admin(request)
    except (AuthenticationFailed, PermissionDenied):
        await _require_owner(request, FILE_NAME.match(name).group(1))  # type: ignore[union-attr]
    return FileResponse(path, headers={"cache-control": "private, max-age=3600"})


async def _require_owner(request: Request, request_id: str) -> None:
    gateway: Gateway = request.state.gateway
    principal = gateway.keys.authenticate(request.headers.get("authorization"))
    if gateway.keys.open:
        return
    ledger = app_state(request).ledger
    row = await ledger.get(request_id)
    if row is None or row.key_id != principal.key_id:
        raise PermissionDenied("This file was made with another key; ask its owner or use the admin key.")


file_routes = [Route("/files/{name}", serve_file, methods=["GET"])]
