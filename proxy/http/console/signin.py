"""Signing in and out. A good key opens a session and lands on the first page its role
may open; a wrong key, or a client API key, gets the sign-in page again with a 401 and
no cookie. The key is compared as a digest and never stored, logged or shown."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from providers.errors import ProxyError

from ...errors import AuthenticationFailed
from ...serving.gateway import Gateway
from .pages import SECURITY_HEADERS, Visit, action, find_visit, read_form, render, same_origin, sessions
from .roles import ConsoleKeys
from .sessions import COOKIE, credential, sign, signing_secret

_NO_KEYS = (
    "The console has no keys on this proxy. Set `server.admin_key` (e.g. ${TOLLGATE_ADMIN_KEY}) "
    "or add `console.keys`, then restart or reload the proxy."
)


async def home(request: Request) -> Response:
    visit = await find_visit(request)
    return _redirect(visit.user.landing_page if visit else "/ui/login")


async def sign_in_page(request: Request) -> Response:
    visit = await find_visit(request)
    if visit is not None:
        return _redirect(visit.user.landing_page)
    return _sign_in_form(request)


async def sign_in(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    config = gateway.config
    keys = ConsoleKeys.of(config)
    secret = signing_secret(config)
    if not same_origin(request):
        return _sign_in_form(request, "This form was sent from another site. Sign in from this page.", status=403)
    if not keys.any or secret is None:
        return _sign_in_form(request)
    try:
        form = await read_form(request)
    except ProxyError as error:
        return _sign_in_form(request, error.message, status=error.status)
    key = form.get("key")
    user = keys.sign_in(key) if isinstance(key, str) else None
    if user is None:
        if isinstance(key, str) and key.strip() and _is_client_key(gateway, key):
            problem = "This is a client API key: the console takes a console key or the admin key."
        else:
            problem = "That key does not open the console. Check the key you were given."
        return _sign_in_form(request, problem, status=401)
    digest = keys.digest_of(user)
    assert digest is not None, "sign_in found this user among the keys"
    hours = config.console.session_hours
    session_id, _ = await sessions(request).open(user, credential(secret, digest), hours)
    response = _redirect(user.landing_page)
    response.set_cookie(
        COOKIE,
        sign(secret, session_id),
        max_age=int(hours * 3600),
        path="/ui",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@action(None)
async def sign_out(request: Request, visit: Visit) -> Response:
    await sessions(request).end(visit.session_id)
    response = _redirect("/ui/login")
    response.delete_cookie(COOKIE, path="/ui", secure=request.url.scheme == "https", httponly=True, samesite="strict")
    return response


def _sign_in_form(request: Request, problem: str | None = None, *, status: int = 200) -> Response:
    gateway: Gateway = request.state.gateway
    if not ConsoleKeys.of(gateway.config).any or signing_secret(gateway.config) is None:
        problem, status = _NO_KEYS, 503
    return render(request, None, "login.html", {"problem": problem}, status=status)


def _is_client_key(gateway: Gateway, key: str) -> bool:
    if gateway.keys.open:
        return False
    try:
        gateway.keys.authenticate(f"Bearer {key.strip()}")
    except AuthenticationFailed:
        return False
    return True


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)
