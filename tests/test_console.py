"""The console's roles, sessions and CSRF, through Starlette's test client on a real
ledger database: who signs in and where they land, what each role is refused, what
the cookie holds, that signing out (or losing the key) ends a session on every
replica, and that no form is taken without its session's CSRF token."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from proxy.config import parse_config
from proxy.http.app import create_app
from proxy.http.console.roles import ConsoleKeys, ConsoleUser, Role
from proxy.http.console.sessions import COOKIE
from proxy.ledger.sql import SqlLedger
from proxy.serving.gateway import Gateway

from .databases import postgres_database
from .rows import OPENAI, charged_row

ADMIN_KEY = "adm-console-unit-1f3e"
REVIEWER_KEY = "rev-console-unit-88a0"
FINANCE_KEY = "fin-console-unit-4c1d"
HASHED_FINANCE_KEY = "fin-hashed-console-unit"
CLIENT_KEY = "sk-client-console-unit"
CONFIG = """
server: {{admin_key: "{admin_key}"}}
ledger: {{url: "{url}", journal_dir: "{journal}"}}
providers:
  openai: {{kind: openai, api_key: sk-up, billing_owner: openai/org-acme, price_table: openai-official}}
routes:
  gpt-image-2: {{targets: [{{provider: openai, model: gpt-image-2}}], review: required}}
keys:
  - {{id: web-app, key: "{client}"}}
console:
  keys:
    - {{id: ana, key: "{reviewer}", role: reviewer}}
    - {{id: finn, key: "{finance}", role: finance}}
    - {{id: fran, key_sha256: {finance_sha256}, role: finance}}
"""
ROWS = [
    charged_row("req_pending1", "2026-11-02T09:00:00.000000Z", [(OPENAI, 41_185_000)], review_status="pending"),
    charged_row("req_pending2", "2026-11-02T10:00:00.000000Z", [(OPENAI, 5_895_000)], review_status="pending"),
    charged_row("req_chat", "2026-11-03T10:00:00.000000Z", [(OPENAI, 7)], route="gpt-5.4", surface="chat.completions"),
]


def config_text(url: str, journal: str, **changes: str) -> str:
    values = {
        "admin_key": ADMIN_KEY,
        "url": url,
        "journal": journal,
        "client": CLIENT_KEY,
        "reviewer": REVIEWER_KEY,
        "finance": FINANCE_KEY,
        "finance_sha256": hashlib.sha256(HASHED_FINANCE_KEY.encode()).hexdigest(),
        **changes,
    }
    return CONFIG.format(**values)


def console(url: str, journal: str, base_url: str = "http://testserver", **changes: str) -> TestClient:
    loaded = parse_config(config_text(url, journal, **changes), {})
    sql = SqlLedger(url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in ROWS])
    app = create_app(lambda: Gateway(loaded, {}, simulated={}))
    return TestClient(app, base_url=base_url, follow_redirects=False)


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with console(f"sqlite:///{tmp_path}/ledger.db", str(tmp_path / "journal")) as client:
        yield client


def sign_in(client: TestClient, key: str) -> str:
    """Sign in; the landing page's path."""
    answer = client.post("/ui/login", data={"key": key})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def csrf_of(client: TestClient, page: str = "/ui/requests") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text).group(1)


def use_cookie(client: TestClient, value: str) -> None:
    """Send `value` as the session cookie, in place of whatever the client holds."""
    client.cookies.clear()
    client.cookies.set(COOKIE, value)


def review_status(client: TestClient, request_id: str) -> str:
    row = client.get(f"/admin/requests/{request_id}", headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    return row["review_status"]


# --- roles ------------------------------------------------------------------------------------


def test_each_role_opens_its_own_pages_and_lands_on_the_first():
    assert ConsoleUser("admin", Role.ADMIN).landing_page == "/ui/review"
    assert ConsoleUser("ana", Role.REVIEWER).landing_page == "/ui/review"
    assert ConsoleUser("finn", Role.FINANCE).landing_page == "/ui/spend"
    assert [area.value for area in ConsoleUser("ana", Role.REVIEWER).areas] == ["review", "requests"]
    assert [area.value for area in ConsoleUser("finn", Role.FINANCE).areas] == ["spend", "requests"]


def test_console_keys_are_matched_as_given_or_by_their_sha256(tmp_path):
    keys = ConsoleKeys.of(parse_config(config_text("sqlite:///x.db", "j"), {}).config)
    assert keys.sign_in(REVIEWER_KEY) == ConsoleUser("ana", Role.REVIEWER)
    assert keys.sign_in(f"  {FINANCE_KEY}\n") == ConsoleUser("finn", Role.FINANCE)
    assert keys.sign_in(HASHED_FINANCE_KEY) == ConsoleUser("fran", Role.FINANCE)
    assert keys.sign_in(ADMIN_KEY) == ConsoleUser("admin", Role.ADMIN)
    assert [keys.sign_in(key) for key in (CLIENT_KEY, REVIEWER_KEY + "x", "", "   ")] == [None] * 4


@pytest.mark.parametrize(
    ("key", "lands_on", "opens", "refused"),
    [
        (REVIEWER_KEY, "/ui/review", ["/ui/review", "/ui/requests", "/ui/requests/req_chat"], ["/ui/spend"]),
        (FINANCE_KEY, "/ui/spend", ["/ui/spend", "/ui/requests", "/ui/spend/export?format=csv"], ["/ui/review"]),
        (ADMIN_KEY, "/ui/review", ["/ui/review", "/ui/spend", "/ui/requests", "/ui/requests/req_chat"], []),
    ],
)
def test_a_role_is_refused_the_other_roles_pages_with_a_403(client, key, lands_on, opens, refused):
    assert sign_in(client, key) == lands_on
    assert client.get("/ui/").headers["location"] == lands_on
    for path in opens:
        assert client.get(path).status_code == 200, path
    for path in refused:
        answer = client.get(path)
        assert answer.status_code == 403 and "may not open the" in answer.text, path
        assert key not in answer.text


def test_a_finance_key_cannot_decide_a_review(client):
    sign_in(client, FINANCE_KEY)
    answer = client.post("/ui/review/req_pending1", data={"approve": "1", "csrf_token": csrf_of(client)})
    assert answer.status_code == 403
    assert review_status(client, "req_pending1") == "pending"


# --- signing in -------------------------------------------------------------------------------


def test_without_a_session_every_page_sends_to_the_sign_in_form(client):
    for path in ("/ui/", "/ui/review", "/ui/spend", "/ui/requests", "/ui/requests/req_chat", "/ui/files/x.png"):
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/ui/login"), path
    form = client.get("/ui/login")
    assert form.status_code == 200 and '<input id="key" name="key" type="password"' in form.text


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("not-a-key", "does not open the console"),
        (CLIENT_KEY, "This is a client API key"),
        ("", "does not open the console"),
    ],
)
def test_a_wrong_key_or_a_client_key_gets_the_form_again_with_a_401_and_no_cookie(client, key, says):
    answer = client.post("/ui/login", data={"key": key})
    assert answer.status_code == 401 and says in answer.text
    assert "set-cookie" not in answer.headers and 'name="key"' in answer.text
    assert not (key and key in answer.text)


def test_the_cookie_is_signed_httponly_strict_and_holds_no_key(client):
    client.post("/ui/login", data={"key": REVIEWER_KEY})
    cookie = client.cookies[COOKIE]
    header = client.post("/ui/login", data={"key": REVIEWER_KEY}).headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/ui" in header
    assert f"Max-Age={8 * 3600}" in header and "Secure" not in header  # session_hours defaults to 8; plain http
    assert REVIEWER_KEY not in cookie and hashlib.sha256(REVIEWER_KEY.encode()).hexdigest() not in cookie


def test_over_https_the_cookie_is_secure(tmp_path):
    with console(f"sqlite:///{tmp_path}/ledger.db", str(tmp_path / "j"), base_url="https://testserver") as client:
        assert "Secure" in client.post("/ui/login", data={"key": REVIEWER_KEY}).headers["set-cookie"]


def test_a_tampered_or_foreign_cookie_opens_nothing(client, tmp_path):
    sign_in(client, REVIEWER_KEY)
    session_id, _, signature = client.cookies[COOKIE].partition(".")
    use_cookie(client, f"{session_id}.{signature[:-2]}xx")
    assert client.get("/ui/review").status_code == 303
    use_cookie(client, session_id)
    assert client.get("/ui/review").status_code == 303
    # Signed by a proxy with another admin key, so another secret: not ours.
    with console(f"sqlite:///{tmp_path}/other.db", str(tmp_path / "oj"), admin_key="another-admin-key") as other:
        sign_in(other, REVIEWER_KEY)
        use_cookie(client, other.cookies[COOKIE])
    assert client.get("/ui/review").status_code == 303


def test_no_console_without_a_key_to_open_it(tmp_path):
    text = config_text(f"sqlite:///{tmp_path}/l.db", str(tmp_path / "j")).split("console:")[0]
    text = text.replace(f'server: {{admin_key: "{ADMIN_KEY}"}}', "server: {}")
    loaded = parse_config(text, {})
    with TestClient(create_app(lambda: Gateway(loaded, {}, simulated={})), follow_redirects=False) as client:
        answer = client.post("/ui/login", data={"key": "anything"})
    assert answer.status_code == 503 and "The console has no keys on this proxy" in answer.text
    assert "set-cookie" not in answer.headers


# --- sessions end ------------------------------------------------------------------------------


def test_signing_out_ends_the_session_and_a_replayed_cookie_gets_the_sign_in_page(client):
    sign_in(client, REVIEWER_KEY)
    cookie = client.cookies[COOKIE]
    answer = client.post("/ui/logout", data={"csrf_token": csrf_of(client)})
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/login")
    assert f'{COOKIE}=""' in answer.headers["set-cookie"]
    use_cookie(client, cookie)
    assert client.get("/ui/review").headers["location"] == "/ui/login"


def test_an_expired_session_gets_the_sign_in_page(client, tmp_path):
    sign_in(client, REVIEWER_KEY)
    assert client.get("/ui/review").status_code == 200
    with SqlLedger(f"sqlite:///{tmp_path}/ledger.db").connect() as connection:
        connection.execute("UPDATE console_sessions SET expires_at = expires_at - 8 * 3600")
    assert client.get("/ui/review").headers["location"] == "/ui/login"


def test_a_key_removed_or_rotated_by_a_reload_ends_its_sessions(client, tmp_path):
    sign_in(client, REVIEWER_KEY)
    url, journal = f"sqlite:///{tmp_path}/ledger.db", str(tmp_path / "journal")
    app = client.app
    rotated = parse_config(config_text(url, journal, reviewer="rev-rotated-key"), {})
    app.state.tollgate.gateway = Gateway(rotated, {}, simulated={})
    assert client.get("/ui/review").headers["location"] == "/ui/login"
    app.state.tollgate.gateway = Gateway(parse_config(config_text(url, journal), {}), {}, simulated={})
    assert client.get("/ui/review").status_code == 200  # the same key again: the session stands


def test_sessions_live_in_the_shared_database_so_every_replica_honours_and_ends_them(tmp_path):
    with postgres_database() as url, console(url, str(tmp_path / "a")) as one, console(url, str(tmp_path / "b")) as two:
        sign_in(one, REVIEWER_KEY)
        use_cookie(two, one.cookies[COOKIE])
        assert two.get("/ui/review").status_code == 200
        one.post("/ui/logout", data={"csrf_token": csrf_of(one)})
        assert two.get("/ui/review").headers["location"] == "/ui/login"
        with SqlLedger(url).connect() as connection:
            stored = connection.execute("SELECT id_sha256, user_id, role FROM console_sessions").fetchall()
    ((session_hash, user_id, role),) = stored
    assert (user_id, role) == ("ana", "reviewer") and len(session_hash) == 64  # the id only as its SHA-256


# --- CSRF --------------------------------------------------------------------------------------


def test_a_form_without_its_sessions_csrf_token_changes_nothing(client):
    sign_in(client, REVIEWER_KEY)
    for data in ({"approve": "1"}, {"approve": "1", "csrf_token": "guessed"}):
        answer = client.post("/ui/review/req_pending1", data=data)
        assert answer.status_code == 403 and "CSRF token" in answer.text
    assert client.post("/ui/logout", data={}).status_code == 403
    assert client.get("/ui/review").status_code == 200  # still signed in
    mine = csrf_of(client)
    other = TestClient(client.app, follow_redirects=False)  # another browser, on the same running app
    sign_in(other, REVIEWER_KEY)
    answer = other.post("/ui/review/req_pending1", data={"approve": "1", "csrf_token": mine})
    assert answer.status_code == 403  # another session's token
    assert review_status(client, "req_pending1") == "pending"


def test_a_form_sent_from_another_site_is_refused(client):
    sign_in(client, REVIEWER_KEY)
    token = csrf_of(client)
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        answer = client.post("/ui/review/req_pending1", data={"approve": "1", "csrf_token": token}, headers=headers)
        assert answer.status_code == 403, headers
    assert (
        client.post("/ui/login", data={"key": REVIEWER_KEY}, headers={"origin": "https://evil.example"}).status_code
        == 403
    )
    assert review_status(client, "req_pending1") == "pending"


def test_a_decision_is_recorded_as_through_the_admin_api_under_the_keys_id(client):
    sign_in(client, REVIEWER_KEY)
    token = csrf_of(client, "/ui/review")
    answer = client.post(
        "/ui/review/req_pending1",
        data={"approve": "1", "note": "<script>alert(1)</script>"},
        headers={"x-csrf-token": token, "accept": "application/json", "origin": "http://testserver"},
    )
    assert answer.status_code == 200 and answer.json()["review_status"] == "approved"
    row = client.get("/admin/requests/req_pending1", headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert (row["review"]["reviewer"], row["review"]["note"]) == ("ana", "<script>alert(1)</script>")
    page = client.get("/ui/review?status=approved").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page  # autoescaped
    assert 'data-request-id="req_pending1"' in page and "Approved by <strong>ana</strong>" in page
    assert 'data-request-id="req_pending1"' not in client.get("/ui/review").text  # no longer pending

    client.cookies.clear()
    sign_in(client, ADMIN_KEY)
    redirected = client.post("/ui/review/req_pending2", data={"reject": "1", "csrf_token": csrf_of(client)})
    assert (redirected.status_code, redirected.headers["location"]) == (303, "/ui/review")
    row = client.get("/admin/requests/req_pending2", headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert (row["review_status"], row["review"]["reviewer"]) == ("rejected", "admin")


def test_a_bad_decision_is_a_clear_error_not_a_500(client):
    sign_in(client, ADMIN_KEY)
    token = csrf_of(client)
    json = {"accept": "application/json"}
    both = client.post(
        "/ui/review/req_pending1", data={"approve": "1", "reject": "1", "csrf_token": token}, headers=json
    )
    assert both.status_code == 400 and "either `approve` or `reject`" in both.json()["error"]["message"]
    unknown = client.post("/ui/review/req_nope", data={"approve": "1", "csrf_token": token}, headers=json)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "request_not_found"
    chat = client.post("/ui/review/req_chat", data={"approve": "1", "csrf_token": token})
    assert chat.status_code == 409 and "needs no review" in chat.text


def test_every_page_forbids_third_party_loads_and_framing(client):
    sign_in(client, ADMIN_KEY)
    for path in ("/ui/login", "/ui/review", "/ui/spend", "/ui/requests", "/ui/requests/req_chat"):
        headers = client.get(path).headers
        assert headers["content-security-policy"].startswith("default-src 'self'"), path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"


def test_a_console_form_is_small(client):
    sign_in(client, REVIEWER_KEY)
    note = "n" * 70_000
    answer = client.post("/ui/review/req_pending1", data={"approve": "1", "note": note, "csrf_token": csrf_of(client)})
    assert answer.status_code == 413 and "at most 64 KB" in answer.text
    assert review_status(client, "req_pending1") == "pending"
    assert client.post("/ui/login", data={"key": "k" * 70_000}).status_code == 413


def test_a_form_with_a_file_is_a_clear_400(client):
    sign_in(client, REVIEWER_KEY)
    answer = client.post(
        "/ui/review/req_pending1",
        data={"approve": "1", "csrf_token": csrf_of(client)},
        files={"note": ("note.txt", b"a file, not a note")},
    )
    assert answer.status_code == 400 and "could not be read" in answer.text
    assert review_status(client, "req_pending1") == "pending"
