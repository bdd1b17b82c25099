"""The admin API through Starlette's test client, on a real SQLite ledger: who may
call it, the shape of each endpoint, its filters, the review round trip, spend
reports, and a config view with every secret masked."""

from __future__ import annotations

import csv
import io
import typing
from decimal import Decimal

import orjson
import pytest
from pydantic import BaseModel, SecretStr
from starlette.testclient import TestClient

from proxy.config import Config, parse_config
from proxy.config.redaction import MASK
from proxy.http.app import create_app
from proxy.ledger import GROUPS, LedgerRow
from proxy.ledger.sql import SqlLedger
from proxy.serving.gateway import Gateway

from ..rows import ACME_CATALOG, OPENAI, charged_row

ADMIN_KEY = "adm-5f0c8e1d9b7a6c4e"
CLIENT_KEY = "sk-client-web-app-0042"
HASHED_CLIENT_KEY_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256("test")
SECRETS = {
    "ADMIN_KEY": ADMIN_KEY,
    "CLIENT_KEY": CLIENT_KEY,
    "OPENAI_KEY": "sk-upstream-openai-7c1d",
    "ORG_HEADER": "org-header-secret-3b9e",
    "ACME_KEY": "sk-upstream-acme-41aa",
    "URL_PASSWORD": "url-password-d00d",
    "AWS_SECRET": "aws-secret-8c2f11",
    "REDIS_PASSWORD": "redis-password-77",
    "REVIEWER_KEY": "rev-console-key-5e21",
    "CONSOLE_SECRET": "console-session-secret-0123456789abcdef",
}

CONFIG = """
server:
  admin_key: ${ADMIN_KEY:-}
ledger:
  url: sqlite:///${LEDGER_DIR}/ledger.db
  journal_dir: ${LEDGER_DIR}/journal
state:
  url: redis://:${REDIS_PASSWORD}@localhost:6379/0
providers:
  openai:
    kind: openai
    api_key: ${OPENAI_KEY}
    headers: {OpenAI-Organization: "${ORG_HEADER}"}
    billing_owner: openai/org-acme
    price_table: openai-official
  acme:
    kind: openai_compatible
    base_url: https://acme-user:${URL_PASSWORD}@gw.acme.example/v1
    api_key: ${ACME_KEY}
    billing_owner: acme/acct-42
  bedrock:
    kind: litellm
    billing_owner: aws/acct-9
    litellm_params: {aws_secret_access_key: "${AWS_SECRET}", aws_region_name: us-east-1}
routes:
  gpt-image-2:
    targets: [{provider: openai, model: gpt-image-2}]
    fallbacks: [{provider: acme, model: gpt-image-2}]
    review: required
  gpt-5.4:
    targets: [{provider: openai, model: gpt-5.4}]
keys:
  - {id: web-app, key: "${CLIENT_KEY}", team: growth}
  - {id: batch, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
console:
  session_secret: ${CONSOLE_SECRET}
  keys:
    - {id: ana, key: "${REVIEWER_KEY}", role: reviewer}
    - {id: finn, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, role: finance}
"""


def ledger_row(request_id: str, created_at: str, nano: int, *, provider: str = "openai", **fields) -> LedgerRow:
    return charged_row(request_id, created_at, [(OPENAI if provider == "openai" else ACME_CATALOG, nano)], **fields)


ROWS = [
    ledger_row("req_a", "2026-11-01T09:00:00.000000Z", 41_185_000, review_status="pending"),
    ledger_row("req_b", "2026-11-01T10:00:00.000000Z", 1, review_status="pending", provider="acme"),
    ledger_row("req_c", "2026-11-02T08:00:00.000000Z", 333_333_333, route="gpt-5.4", surface="chat.completions"),
    ledger_row("req_d", "2026-11-03T08:00:00.000000Z", 10**12 + 7, status="error", review_status="pending"),
]


def write_rows(url: str, rows: list[LedgerRow]) -> None:
    sql = SqlLedger(url)
    with sql.connect() as connection:
        sql.create_schema(connection)
        sql.upsert(connection, [row.record() for row in rows])


def start(tmp_path, env: dict[str, str]):
    loaded = parse_config(CONFIG, {**env, "LEDGER_DIR": str(tmp_path)})
    write_rows(loaded.config.ledger.url, ROWS)
    return TestClient(create_app(lambda: Gateway(loaded, {}, simulated={}))), loaded


@pytest.fixture
def admin(tmp_path):
    client, loaded = start(tmp_path, SECRETS)
    with client:
        client.headers["authorization"] = f"Bearer {ADMIN_KEY}"
        client.loaded = loaded
        yield client


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


ENDPOINTS = [
    ("GET", "/admin/requests/req_a"),
    ("GET", "/admin/requests"),
    ("POST", "/admin/requests/req_a/review"),
    ("GET", "/admin/spend"),
    ("GET", "/admin/config"),
]
REVIEW = {"status": "approved", "reviewer": "ana", "note": "on brand"}


# --- who may call -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_without_an_admin_key_configured_every_endpoint_is_off(tmp_path, method, path):
    client, _ = start(tmp_path, {key: value for key, value in SECRETS.items() if key != "ADMIN_KEY"})
    with client:
        response = client.request(method, path, headers={"authorization": f"Bearer {CLIENT_KEY}"}, json=REVIEW)
    assert response.status_code == 403
    error = error_of(response)
    assert error["type"] == "permission_error" and "Set `server.admin_key`" in error["message"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    ("authorization", "status", "says"),
    [
        (None, 401, "No admin key given"),
        ("Basic " + ADMIN_KEY, 401, "No admin key given"),
        ("Bearer not-the-admin-key", 401, "The admin key is not valid"),
        (f"Bearer {ADMIN_KEY}x", 401, "The admin key is not valid"),
        (f"Bearer {CLIENT_KEY}", 403, "This is a client key"),
        ("Bearer test", 403, "This is a client key"),  # the key stored only as its SHA-256
    ],
)
def test_only_the_admin_key_opens_the_admin_api(admin, method, path, authorization, status, says):
    headers = {"authorization": authorization} if authorization else {}
    del admin.headers["authorization"]
    response = admin.request(method, path, headers=headers, json=REVIEW)
    assert response.status_code == status
    error = error_of(response)
    assert says in error["message"] and "Authorization: Bearer <admin key>" in error["message"]
    assert ADMIN_KEY not in response.text and CLIENT_KEY not in response.text
    as_admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    assert admin.get("/admin/requests/req_a", headers=as_admin).json()["review_status"] == "pending"  # unreviewed


def test_the_admin_key_opens_every_endpoint(admin):
    for method, path in ENDPOINTS:
        response = admin.request(method, path, json=REVIEW)
        assert response.status_code == 200, (path, response.text)
    assert admin.get("/admin/spend", headers={"authorization": f"bearer {ADMIN_KEY}"}).status_code == 200


# --- one row, and lists of them ----------------------------------------------------------------


def test_a_row_is_shown_as_the_ledger_holds_it(admin):
    shown = admin.get("/admin/requests/req_d").json()
    assert shown == ROWS[3].public()
    assert shown["cost_usd"] == "1000.000000007" and shown["charges"][0]["cost_usd"] == "1000.000000007"
    assert "cost_nanousd" not in shown and "owner" not in shown


def test_an_unknown_request_id_is_a_404(admin):
    response = admin.get("/admin/requests/req_nope")
    assert response.status_code == 404
    error = error_of(response)
    assert "req_nope" in error["message"] and error["code"] == "request_not_found"


def test_the_list_is_newest_first_in_openais_list_shape(admin):
    body = admin.get("/admin/requests").json()
    assert body["object"] == "list"
    assert [row["request_id"] for row in body["data"]] == ["req_d", "req_c", "req_b", "req_a"]
    assert body["data"][0] == ROWS[3].public()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("route=gpt-5.4", ["req_c"]),
        ("provider=acme", ["req_b"]),
        ("status=error", ["req_d"]),
        ("review_status=pending", ["req_d", "req_b", "req_a"]),
        ("review_status=pending&provider=openai", ["req_d", "req_a"]),
        ("since=2026-11-02", ["req_d", "req_c"]),
        ("until=2026-11-02", ["req_b", "req_a"]),
        # 09:30+01:00 is 08:30Z; until is exclusive, so req_c at 08:00Z is out
        ("since=2026-11-01T09:30:00%2B01:00&until=2026-11-02T08:00Z", ["req_b", "req_a"]),
        ("limit=2", ["req_d", "req_c"]),
        ("route=dall-e-9", []),
    ],
)
def test_the_list_filters(admin, query, expected):
    rows = admin.get(f"/admin/requests?{query}").json()["data"]
    assert [row["request_id"] for row in rows] == expected


@pytest.mark.parametrize(
    ("query", "param", "says"),
    [
        ("limit=0", "limit", "greater than or equal to 1"),
        ("limit=1001", "limit", "less than or equal to 1000"),
        ("limit=ten", "limit", "valid integer"),
        ("status=done", "status", "'started', 'ok', 'error', 'abandoned' or 'client_closed'"),
        ("review_status=maybe", "review_status", "'not_required', 'pending', 'approved' or 'rejected'"),
        ("since=last-week", "since", "not an ISO 8601 date or datetime"),
        ("until=2026-02-30", "until", "not an ISO 8601 date or datetime"),
        ("colour=red", "colour", "Unknown query parameter 'colour'; known: since, until"),
    ],
)
def test_a_bad_list_query_is_a_400_naming_the_parameter(admin, query, param, says):
    response = admin.get(f"/admin/requests?{query}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == param and says in error["message"], error


# --- review ------------------------------------------------------------------------------------


def test_a_review_is_stored_and_shown(admin):
    response = admin.post("/admin/requests/req_a/review", json=REVIEW)
    assert response.status_code == 200
    shown = response.json()
    assert shown["review_status"] == "approved"
    review = shown["review"]
    assert {key: review[key] for key in ("reviewer", "note")} == {"reviewer": "ana", "note": "on brand"}
    assert review["reviewed_at"].endswith("Z") and review["reviewed_at"][:2] == "20"
    assert admin.get("/admin/requests/req_a").json() == shown
    assert [row["request_id"] for row in admin.get("/admin/requests?review_status=approved").json()["data"]] == [
        "req_a"
    ]
    rejected = admin.post("/admin/requests/req_a/review", json={**REVIEW, "status": "rejected", "reviewer": "bo"})
    assert rejected.json()["review_status"] == "rejected" and rejected.json()["review"]["reviewer"] == "bo"


def test_a_replayed_old_snapshot_does_not_undo_a_review(admin):
    admin.post("/admin/requests/req_b/review", json=REVIEW)
    old = ledger_row("req_b", "2026-11-01T10:00:00.000000Z", 1, review_status="pending", provider="acme")
    write_rows(admin.loaded.config.ledger.url, [old])  # as a journal replay would
    assert admin.get("/admin/requests/req_b").json()["review_status"] == "approved"


def test_a_row_that_needs_no_review_is_a_409(admin):
    response = admin.post("/admin/requests/req_c/review", json=REVIEW)
    assert response.status_code == 409
    assert "needs no review" in error_of(response)["message"]
    assert admin.get("/admin/requests/req_c").json()["review_status"] == "not_required"


def test_reviewing_an_unknown_request_is_a_404(admin):
    assert admin.post("/admin/requests/req_nope/review", json=REVIEW).status_code == 404


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({**REVIEW, "status": "fine"}, "status", "'approved' or 'rejected'"),
        ({"status": "approved", "note": "x"}, "reviewer", "Field required"),
        ({**REVIEW, "reviewer": ""}, "reviewer", "at least 1 character"),
        ({**REVIEW, "score": 5}, "score", "Unknown field 'score'; known: status, reviewer, note"),
    ],
)
def test_a_bad_review_is_a_400_naming_the_field(admin, body, param, says):
    response = admin.post("/admin/requests/req_a/review", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == param and says in error["message"], error
    assert admin.get("/admin/requests/req_a").json()["review_status"] == "pending"


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]"])
def test_a_review_body_must_be_a_json_object(admin, content):
    response = admin.post("/admin/requests/req_a/review", content=content)
    assert response.status_code == 400 and '"reviewer"' in error_of(response)["message"]


# --- spend --------------------------------------------------------------------------------------


def test_spend_groups_and_totals_exactly(admin):
    response = admin.get("/admin/spend?group_by=billing_owner,price_table")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {
        "group_by": ["billing_owner", "price_table"],
        "rows": [
            {
                "billing_owner": "acme/acct-42",
                "price_table": "litellm-catalog",
                "requests": 1,
                "cost_usd": "0.000000001",
            },
            {
                "billing_owner": "openai/org-acme",
                "price_table": "openai-official",
                "requests": 3,
                "cost_usd": "1000.37451834",
            },
        ],
        "total_usd": "1000.374518341",
    }
    assert Decimal(body["total_usd"]) == sum(Decimal(row["cost_usd"]) for row in body["rows"])


def test_spend_defaults_to_billing_owner_and_price_table_and_filters_by_time(admin):
    assert admin.get("/admin/spend").json()["group_by"] == ["billing_owner", "price_table"]
    body = admin.get("/admin/spend?group_by=day,route&since=2026-11-02&until=2026-11-03").json()
    assert body["rows"] == [{"day": "2026-11-02", "route": "gpt-5.4", "requests": 1, "cost_usd": "0.333333333"}]
    assert body["total_usd"] == "0.333333333"


def test_spend_as_csv(admin):
    response = admin.get("/admin/spend?group_by=provider,day&format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["provider", "day", "requests", "cost_usd"]
    assert rows == [
        {"provider": "acme", "day": "2026-11-01", "requests": "1", "cost_usd": "0.000000001"},
        {"provider": "openai", "day": "2026-11-01", "requests": "1", "cost_usd": "0.041185"},
        {"provider": "openai", "day": "2026-11-02", "requests": "1", "cost_usd": "0.333333333"},
        {"provider": "openai", "day": "2026-11-03", "requests": "1", "cost_usd": "1000.000000007"},
    ]


def test_spend_as_focus_has_a_line_per_charge_summing_to_the_ledger(admin):
    response = admin.get("/admin/spend?format=focus&since=2026-11-01&until=2026-11-03")
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert [line["x_RequestId"] for line in lines] == ["req_a", "req_b", "req_c"]
    assert [line["InvoiceIssuerName"] for line in lines] == ["openai/org-acme", "acme/acct-42", "openai/org-acme"]
    total = admin.get("/admin/spend?since=2026-11-01&until=2026-11-03").json()["total_usd"]
    assert sum(Decimal(line["BilledCost"]) for line in lines) == Decimal(total)
    daily = list(csv.DictReader(io.StringIO(admin.get("/admin/spend?format=focus&aggregate=daily").text)))
    assert [(line["ChargePeriodStart"][:10], line["ProviderName"], line["x_RequestCount"]) for line in daily] == [
        ("2026-11-01", "openai", "1"),
        ("2026-11-01", "acme", "1"),
        ("2026-11-02", "openai", "1"),
        ("2026-11-03", "openai", "1"),
    ]


@pytest.mark.parametrize(
    ("query", "param", "says"),
    [
        ("format=focus&group_by=day", "group_by", "leave out group_by"),
        ("format=csv&aggregate=daily", "aggregate", "add format=focus"),
        ("format=focus&aggregate=weekly", "aggregate", "'daily'"),
    ],
)
def test_a_focus_query_that_mixes_in_grouping_is_a_400_saying_what_to_change(admin, query, param, says):
    response = admin.get(f"/admin/spend?{query}")
    error = error_of(response)
    assert response.status_code == 400 and error["param"] == param and says in error["message"]


def test_unknown_group_fields_are_a_400_listing_the_allowed_ones(admin):
    response = admin.get("/admin/spend?group_by=billing_owner,colour")
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "group_by" and "'colour'" in error["message"]
    assert all(name in error["message"] for name in GROUPS)


@pytest.mark.parametrize(("query", "param"), [("format=xml", "format"), ("since=soon", "since")])
def test_a_bad_spend_query_is_a_400(admin, query, param):
    response = admin.get(f"/admin/spend?{query}")
    assert response.status_code == 400 and error_of(response)["param"] == param


# --- config --------------------------------------------------------------------------------------


def secret_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every SecretStr field in the config schema, found by walking its types."""
    found = set()
    for name, field in model.model_fields.items():
        for kind in _leaf_types(field.annotation):
            if kind is SecretStr:
                found.add(prefix + name)
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= secret_paths(kind, f"{prefix}{name}.")
    return found


def _leaf_types(annotation) -> list:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for arg in args for leaf in _leaf_types(arg)]


def test_the_test_config_sets_every_secret_field_of_the_schema():
    # A new SecretStr field fails here until the config above sets it and the redaction test covers it.
    assert secret_paths(Config) == {
        "server.admin_key",
        "providers.api_key",
        "providers.headers",
        "keys.key",
        "console.keys.key",
        "console.session_secret",
    }


def test_config_is_shown_with_every_secret_masked(admin):
    response = admin.get("/admin/config")
    body = response.json()
    assert body["version"] == admin.loaded.version and len(body["version"]) == 12
    for name, secret in SECRETS.items():
        assert secret not in response.text, name
    assert HASHED_CLIENT_KEY_SHA256 not in response.text
    config = body["config"]
    assert config["server"]["admin_key"] == MASK
    assert config["providers"]["openai"]["api_key"] == MASK
    assert config["providers"]["openai"]["headers"] == {"OpenAI-Organization": MASK}
    assert config["providers"]["acme"]["base_url"] == f"https://acme-user:{MASK}@gw.acme.example/v1"
    assert config["providers"]["bedrock"]["litellm_params"] == {
        "aws_secret_access_key": MASK,
        "aws_region_name": "us-east-1",
    }
    assert config["keys"][0] == {**config["keys"][0], "id": "web-app", "key": MASK, "team": "growth"}
    assert config["keys"][1]["key_sha256"] == MASK
    assert config["console"]["keys"][0] == {"id": "ana", "key": MASK, "key_sha256": None, "role": "reviewer"}
    assert config["console"]["keys"][1]["key_sha256"] == MASK
    assert config["console"]["session_secret"] == MASK
    assert config["state"]["url"] == f"redis://:{MASK}@localhost:6379/0"
    # the rest is the config as loaded, exact decimals and all
    assert config["routes"]["gpt-image-2"]["review"] == "required"
    assert config["ledger"]["url"] == admin.loaded.config.ledger.url


def test_config_without_secrets_set_shows_them_as_null(tmp_path):
    loaded = parse_config(
        "providers: {sim: {kind: simulator, billing_owner: nobody}}\n"
        "routes: {gpt-5.4: {targets: [{provider: sim, model: gpt-5.4}]}}\n"
        f"server: {{admin_key: {ADMIN_KEY}}}\n"
        f"ledger: {{url: 'sqlite:///{tmp_path}/l.db', journal_dir: '{tmp_path}/j'}}\n",
        {},
    )
    with TestClient(create_app(lambda: Gateway(loaded, {}, simulated={}))) as client:
        body = client.get("/admin/config", headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert body["config"]["providers"]["sim"]["api_key"] is None
    assert body["config"]["keys"] is None
    assert orjson.dumps(body).count(MASK.encode()) == 1  # only the admin key


def test_an_admin_path_it_does_not_serve_or_the_wrong_method_is_openai_shaped(admin):
    unknown = admin.get("/admin/nowhere")
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "unknown_url"
    assert "GET /admin/nowhere is not served here" in error_of(unknown)["message"]
    wrong_method = admin.get("/admin/reload")
    assert wrong_method.status_code == 405 and error_of(wrong_method)["code"] == "unknown_url"
    assert admin.get("/admin").status_code == 404  # by way of a redirect to /admin/
