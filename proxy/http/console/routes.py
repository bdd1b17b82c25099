"""The console's pages under `/ui` (mounted by app.py, imported at its first request).
Mounted after every API route: a request for `/v1/...` never looks at it."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles

from .images import serve_image
from .requests import request_detail, request_list
from .review import decide, review_queue
from .signin import home, sign_in, sign_in_page, sign_out
from .spend import spend_export, spend_page

console_app = Router(
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
    ]
)
