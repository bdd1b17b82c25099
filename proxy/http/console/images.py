"""A row's images, as the console shows them. An `<img>` carries no bearer key, so the
console serves the `files:` store's images itself, to a signed-in visitor, whether or
not `files.url_base` is set (without it, a row's URLs are `file://` paths)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ...errors import UnknownRoute
from ...ledger import LedgerRow
from ...serving.files import FILE_NAME
from ..app_state import app_state
from .pages import SECURITY_HEADERS, Visit, page
from .roles import Area


def image_paths(row: LedgerRow) -> list[str]:
    """The console's URL of each stored image of the row."""
    names = (url.rstrip("/").rsplit("/", 1)[-1] for url in row.file_urls)
    return [f"/ui/files/{name}" for name in names if FILE_NAME.match(name)]


@page(Area.REQUESTS)
async def serve_image(request: Request, visit: Visit) -> Response:
    files = app_state(request).files
    name = request.path_params["name"]
    path = files.path_of(name) if files is not None else None
    if path is None:
        raise UnknownRoute(
            f"No stored image '{name}'. Images are kept where the config has a `files:` section.",
            code="file_not_found",
        )
    headers = {**SECURITY_HEADERS, "cache-control": "private, max-age=3600"}
    return FileResponse(path, headers=headers)
