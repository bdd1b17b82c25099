"""What every console page shares: the templates (autoescaped: prompts and notes are
user input), the security headers, finding the visitor's session, the role each page
needs, and the CSRF check on every POST. Errors are pages for a person in a browser,
and OpenAI-shaped JSON for the page's own script (`accept: application/json`)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from providers.errors import ProxyError

from ...errors import AuthenticationFailed, BodyTooLarge, InvalidRequest, PermissionDenied
from ...ledger import DisabledLedger, Ledger, from_nano
from ...pricing import usd
from ...serving.gateway import Gateway
from ..app_state import app_state
from .roles import Area, ConsoleKeys, ConsoleUser
from .sessions import COOKIE, Session, SessionStore, credential, signing_secret, unsign

# No third-party loads, no inline script, no framing: the console is its own origin's only.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 64 * 1024

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)


def _usd(nano: int | None) -> str:
    amount = from_nano(nano)
    return "—" if amount is None else usd(amount)


def _when(moment: str | None) -> str:
    """`2026-12-03T10:00:01.123456Z` → `2026-12-03 10:00:01 UTC`."""
    return f"{moment[:10]} {moment[11:19]} UTC" if moment and len(moment) >= 19 else (moment or "—")


templates.env.filters["usd"] = _usd
templates.env.filters["when"] = _when


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in visitor: who, and the session their cookie names."""

    user: ConsoleUser
    session: Session
    session_id: str


Handler = Callable[[Request, Visit], Awaitable[Response]]


def page(area: Area) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A GET page of `area`: without a session, to the sign-in page; with the wrong role, a 403."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            visit = await find_visit(request)
            if visit is None:
                return RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
            return await _guarded(request, visit, area, handler)

        return endpoint

    return wrap


def action(area: Area | None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A POST of `area` (None: any signed-in user): it needs a live session, a request from
    our own origin and the session's CSRF token."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            visit = await find_visit(request)
            if visit is None:
                if wants_json(request):
                    return error_response(request, None, AuthenticationFailed(_SIGNED_OUT, code="console_signed_out"))
                return RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
            if not same_origin(request):
                return error_response(request, visit, PermissionDenied(_CROSS_SITE, code="csrf_failed"))
            try:
                form = await read_form(request)
            except ProxyError as error:
                return error_response(request, visit, error)
            token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
            if not visit.session.csrf_matches(token if isinstance(token, str) else None):
                return error_response(request, visit, PermissionDenied(_BAD_CSRF, code="csrf_failed"))
            return await _guarded(request, visit, area, handler)

        return endpoint

    return wrap


_SIGNED_OUT = "Your console session has ended. Sign in again at /ui/login."
_CROSS_SITE = "This form was sent from another site; the console takes forms only from its own pages."
_BAD_CSRF = "This form's CSRF token does not match your session (it may be from an older sign-in). Reload the page."


async def _guarded(request: Request, visit: Visit, area: Area | None, handler: Handler) -> Response:
    if area is not None and not visit.user.may_open(area):
        message = (
            f"Your key ({visit.user.id}, role {visit.user.role}) may not open the {area} pages. "
            "Sign in with a key whose role may, or with the admin key."
        )
        return error_response(request, visit, PermissionDenied(message, code="console_role"))
    try:
        return await handler(request, visit)
    except ProxyError as error:
        return error_response(request, visit, error)


async def find_visit(request: Request) -> Visit | None:
    """The visitor's live session, if their cookie names one that their key still opens."""
    gateway: Gateway = request.state.gateway
    secret = signing_secret(gateway.config)
    cookie = request.cookies.get(COOKIE)
    session_id = unsign(secret, cookie) if secret and cookie else None
    if secret is None or session_id is None:
        return None
    session = await sessions(request).find(session_id)
    if session is None:
        return None
    # The key must still open the console with the same role: removing or rotating a key ends its sessions.
    digest = ConsoleKeys.of(gateway.config).digest_of(session.user)
    if digest is None or session.credential != credential(secret, digest):
        return None
    return Visit(session.user, session, session_id)


def same_origin(request: Request) -> bool:
    """A browser names the site a POST came from; it must be ours (no header: not a browser's form).
    The host alone is compared: behind a proxy that ends TLS, the scheme we see may not be the browser's."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


async def read_form(request: Request) -> FormData:
    """A console form: a few fields, never megabytes."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise BodyTooLarge(f"A console form is at most {MAX_FORM_BYTES // 1024} KB; shorten the note.")
    try:
        return await request.form(max_files=0)
    except HTTPException as error:  # Starlette's word on a form it cannot parse
        raise InvalidRequest(f"The form could not be read ({error.detail}); send it from the console's page.") from None


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def render(
    request: Request, visit: Visit | None, template: str, context: dict[str, Any], *, status: int = 200
) -> Response:
    shown = {"user": visit.user if visit else None, "csrf_token": visit.session.csrf_token if visit else "", **context}
    return templates.TemplateResponse(request, template, shown, status_code=status, headers=SECURITY_HEADERS)


def error_response(request: Request, visit: Visit | None, error: ProxyError) -> Response:
    if wants_json(request):
        return Response(error.body(), status_code=error.status, media_type="application/json", headers=SECURITY_HEADERS)
    return render(request, visit, "error.html", {"status": error.status, "message": error.message}, status=error.status)


def sessions(request: Request) -> SessionStore:
    return app_state(request).console_sessions


def ledger(request: Request) -> Ledger | DisabledLedger:
    return app_state(request).ledger
