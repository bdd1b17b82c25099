"""The console under `/ui`: server-rendered pages for the people who review images and
read the bill, served by the proxy itself. It reads the ledger through the same
functions as the admin API (proxy/finance/ledger_queries.py), so the two never disagree.

Mounted after every API route: a request for `/v1/...` never looks at it."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .images import serve_image
from .requests import request_detail, request_list
from .review import decide, review_queue
from .sessions import SessionStore
from .signin import home, sign_in, sign_in_page, sign_out
from .spend import spend_export, spend_page

__all__ = ["SessionStore", "console_routes"]

console_routes = [
    Mount(
        "/ui",
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/login", sign_in_page, methods=["GET"]),
            Route("/login", sign_in, methods=["POST"]),
            Route("/logout", sign_out, methods=["POST"]),
            Route("/review", review_queue, methods=["GET"]),
            Route("/review/{request_id}", decide, methods=["POST"]),
            Route("/spend", spend_page, methods=["GET"]),
            Route("/spend/export", spend_export, methods=["GET"]),
            Route("/requests", request_list, methods=["GET"]),
            Route("/requests/{request_id}", request_detail, methods=["GET"]),
            Route("/files/{name}", serve_image, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
        ],
    )
]
