"""The config loader: typed sections, ${VAR} interpolation, and errors that name
their location and what to change — all of them in one run."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
providers:
  openai:
    kind: openai
    api_key: sk-test
    billing_owner: openai/org-1
    price_table: openai-official
routes:
  gpt-image-2:
    targets: [{provider: openai, model: gpt-image-2}]
"""


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env or {})
    return [str(issue) for issue in caught.value.issues]


def test_the_example_config_loads_with_every_section():
    loaded = load_config(ROOT / "config.yaml", {})
    config = loaded.config
    assert set(config.routes) == {"gpt-image-2", "gpt-5.4", "gpt-5.4-mini", "text-embedding-3-small"}
    assert config.providers["openai"].kind == "openai"
    assert config.providers["acme"].kind == "openai_compatible"
    assert config.providers["acme"].verified is not None
    assert config.routes["gpt-image-2"].fallbacks[0].provider == "acme"
    assert config.price_tables["acme-2026-11"].source == "provider"
    assert len(loaded.version) == 12
    # What the console needs: stored images and a reviewed route.
    assert config.files is not None and config.files.dir == "tollgate-files"
    assert config.routes["gpt-image-2"].review == "required" and config.console.session_hours == 8


def test_slow_and_excess_clients_have_limits_an_operator_expects():
    server = load_config(ROOT / "config.yaml", {}).config.server
    assert (server.client_header_timeout_s, server.client_body_timeout_s, server.max_connections) == (30, 60, None)
    text = (
        (ROOT / "config.yaml").read_text().replace("  max_body_mb: 64\n", "  max_body_mb: 64\n  max_connections: 0\n")
    )
    assert any(error.startswith("server.max_connections:") for error in errors_of(text))


def test_prices_load_as_exact_decimals():
    config = load_config(ROOT / "config.yaml", {}).config
    low = config.price_tables["acme-2026-11"].models["gpt-image-2"].image["low"]
    assert low["1024x1024"] == Decimal("0.009")
    assert isinstance(low["1024x1024"], Decimal)


def test_environment_variables_and_defaults_are_interpolated():
    text = MINIMAL.replace("sk-test", "${OPENAI_KEY}").replace("openai/org-1", "${OWNER:-openai/org-default}")
    config = parse_config(text, {"OPENAI_KEY": "sk-from-env"}).config
    assert config.providers["openai"].api_key.get_secret_value() == "sk-from-env"
    assert config.providers["openai"].billing_owner == "openai/org-default"


def test_a_missing_variable_names_itself_and_where_it_is_used():
    assert errors_of(MINIMAL.replace("sk-test", "${OPENAI_KEY}")) == [
        "providers.openai.api_key: environment variable OPENAI_KEY is not set; set it, or write ${OPENAI_KEY:-default}"
    ]


def test_a_double_dollar_is_a_literal_dollar():
    config = parse_config(MINIMAL.replace("openai/org-1", "'cost$$center'"), {}).config
    assert config.providers["openai"].billing_owner == "cost$center"


def test_unknown_keys_are_errors_with_a_suggestion():
    text = MINIMAL.replace(
        "targets: [{provider: openai, model: gpt-image-2}]",
        "targets: [{provider: openai, model: gpt-image-2, wieght: 2}]\n    timeout: 10",
    )
    assert errors_of(text) == [
        "routes.gpt-image-2.targets[0].wieght: unknown key 'wieght'; did you mean 'weight'?",
        "routes.gpt-image-2.timeout: unknown key 'timeout'; did you mean 'timeout_s'?",
    ]


def test_every_error_is_reported_in_one_run():
    text = """
server: {prot: 4000}
providers:
  openai: {kind: openai, billing_owner: o, price_table: openai-oficial}
  acme: {kind: openai_compatible, billing_owner: a}
routes:
  gpt-image-2:
    targets: [{provider: opnai, model: gpt-image-2}]
    retries: -1
"""
    assert errors_of(text) == [
        "server.prot: unknown key 'prot'; did you mean 'port'?",
        "providers.acme: a provider of kind 'openai_compatible' needs `base_url`",
        "routes.gpt-image-2.retries: Input should be greater than or equal to 0 (got -1)",
        "providers.openai.price_table: unknown price table 'openai-oficial'; did you mean 'openai-official'?",
        "routes.gpt-image-2.targets[0].provider: unknown provider 'opnai'; did you mean 'openai'?",
    ]


def test_a_key_may_only_name_existing_routes_and_ids_are_unique():
    text = (
        MINIMAL
        + """
keys:
  - {id: web, key: k1, routes: [gpt-image-3]}
  - {id: web, key: k2}
"""
    )
    assert errors_of(text) == [
        "keys[0].routes[0]: unknown route 'gpt-image-3'; did you mean 'gpt-image-2'?",
        "keys[1].id: 'web' is used by an earlier key; ids must be unique",
    ]


def test_secrets_never_appear_in_errors():
    text = (
        MINIMAL
        + f"""
keys:
  - {{id: web, key: super-secret-value, key_sha256: {"a" * 64}}}
  - {{id: app, key: [another-secret]}}
"""
    )
    errors = errors_of(text)
    assert any("keys[0]" in error and "exactly one of" in error for error in errors)
    assert not any("secret" in error for error in errors)


def test_duplicate_yaml_keys_are_refused():
    text = MINIMAL + "routes:\n  other: {targets: [{provider: openai, model: x}]}\n"
    (error,) = errors_of(text)
    assert "duplicate key 'routes'" in error and error.startswith("line ")


def test_yaml_syntax_errors_say_where():
    (error,) = errors_of("routes: [unclosed\n")
    assert error.startswith("line 2") and "not valid YAML" in error


def test_built_in_table_names_cannot_be_redefined():
    text = (
        MINIMAL
        + """
price_tables:
  openai-official:
    {source: provider, provider: me, effective: 2026-01-01, url: x, models: {m: {tokens: {text_input: 1}}}}
"""
    )
    assert errors_of(text) == [
        "price_tables.openai-official: 'openai-official' is built in; give your table another name"
    ]


def test_a_price_needs_image_or_tokens():
    text = (
        MINIMAL
        + """
price_tables:
  mine: {source: provider, provider: me, effective: 2026-01-01, url: x, models: {m: {}}}
"""
    )
    assert errors_of(text) == [
        "price_tables.mine.models.m: give `image` (per image by quality and size) or `tokens` (per 1M tokens), or both"
    ]


def test_check_prints_a_summary_and_exits_0(capsys):
    assert main(["check", "--config", str(ROOT / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "gpt-image-2  owner: platform-team" in out
    assert "acme/gpt-image-2  fallback  billing acme/acct-42  prices acme-2026-11 (provider)" in out
    assert "openai-official  official  published by openai" in out
    assert "openai/org-acme  <- openai" in out


def test_check_prints_every_error_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("provider: openai,", "provider: opnai,").replace("api_key", "apikey"))
    assert main(["check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "providers.openai.apikey: unknown key 'apikey'; did you mean 'api_key'?" in err
    assert "routes.gpt-image-2.targets[0].provider: unknown provider 'opnai'" in err


@pytest.mark.parametrize("command", ["check", "serve"])
def test_a_file_that_is_not_utf8_is_a_located_error_and_exit_2(tmp_path, capsys, command):
    latin1 = tmp_path / "config.yaml"
    latin1.write_bytes(MINIMAL.replace("openai/org-1", "caf\xe9/org-1").encode("latin-1"))
    offset = latin1.read_bytes().index(b"\xe9")
    assert main([command, "--config", str(latin1)]) == 2
    captured = capsys.readouterr()
    assert f"{latin1}: 1 error(s)" in captured.err
    assert f"line 6, column 23: not UTF-8 text: byte 0xe9 at offset {offset}; save the file as UTF-8" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_a_reseller_cannot_bill_on_an_official_table():
    text = (
        MINIMAL
        + """
  acme-route:
    targets: [{provider: acme, model: gpt-image-2}]
"""
    )
    text = text.replace(
        "routes:",
        """  acme:
    kind: openai_compatible
    base_url: https://gw.acme.example/v1
    api_key: k
    billing_owner: acme/acct-1
    price_table: openai-official
routes:""",
    )
    (error,) = errors_of(text)
    assert error.startswith("providers.acme.price_table: 'openai-official' is a vendor's official list price")


def test_each_provider_kind_has_its_own_settings_and_errors_name_the_kind():
    unknown = MINIMAL.replace("kind: openai", "kind: opneai")
    assert errors_of(unknown) == [
        "providers.openai.kind: Input should be 'openai', 'azure', 'openai_compatible', 'litellm' or 'simulator' "
        "(got 'opneai')"
    ]
    assert errors_of(MINIMAL.replace("    kind: openai\n", "")) == ["providers.openai.kind: required, but missing"]
    another_kinds = MINIMAL.replace("api_key: sk-test", "api_key: sk-test\n    api_version: 2025-04-01-preview")
    assert errors_of(another_kinds) == [
        "providers.openai.api_version: unknown key 'api_version' for a provider of kind 'openai': "
        "it is a setting of kind azure"
    ]


def test_a_provider_lists_the_image_formats_it_returns():
    config = load_config(ROOT / "config.yaml", {}).config
    assert config.providers["acme"].output_formats == ["png", "jpeg", "webp"]
    bad = MINIMAL.replace("billing_owner: openai/org-1", "billing_owner: openai/org-1\n    output_formats: [png, gif]")
    assert errors_of(bad) == ["providers.openai.output_formats[1]: Input should be 'png', 'jpeg' or 'webp' (got 'gif')"]


def test_console_keys_have_a_role_unique_ids_and_a_secret_to_sign_sessions():
    console = """
console:
  session_secret: ${CONSOLE_SECRET}
  keys:
    - {id: ana, key: rev-key-1, role: reviewer}
    - {id: ana, key: rev-key-2, role: finance}
    - {id: admin, key: rev-key-3, role: reviewer}
    - {id: bob, key: rev-key-4, role: auditor}
    - {id: cy, key: rev-key-5, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,
       role: finance}
"""
    errors = errors_of(MINIMAL + console, {"CONSOLE_SECRET": "too-short-secret-value"})
    assert "console.keys[1].id: 'ana' is used by an earlier key; ids must be unique" in errors
    assert "console.keys[2].id: 'admin' names the admin key; give this key another id" in errors
    assert any(error.startswith("console.keys[3].role: Input should be 'reviewer' or 'finance'") for error in errors)
    assert "console.keys[4]: give exactly one of `key` (e.g. ${WEB_APP_KEY}) or `key_sha256`" in errors
    assert any(error.startswith("console.session_secret: use at least 32 random characters") for error in errors)
    assert not any("too-short-secret-value" in error or "rev-key" in error for error in errors)


def test_console_keys_need_the_admin_key_or_a_session_secret():
    console = "console:\n  keys: [{id: ana, key: rev-key-1, role: reviewer}]\n"
    (error,) = errors_of(MINIMAL + console)
    assert error.startswith("console.session_secret: console keys need a secret to sign their sessions")
    assert parse_config(MINIMAL + "server: {admin_key: adm-1}\n" + console, {}).config.console.session_hours == 8
    secret = "console:\n  session_secret: " + "s" * 32 + "\n" + console.removeprefix("console:\n")
    assert [key.id for key in parse_config(MINIMAL + secret, {}).config.console.keys] == ["ana"]


def test_a_redis_cluster_is_named_by_one_node_on_database_0():
    for url in ("redis://10.0.0.5:7000/0", "redis://10.0.0.5:7000", "rediss://:pw@cache.internal:6380/0"):
        state = parse_config(MINIMAL + f"state: {{url: '{url}', cluster: true}}\n", {}).config.state
        assert state.cluster and state.url == url
    assert errors_of(MINIMAL + "state: {url: 'redis://10.0.0.5:7000/1', cluster: true}\n") == [
        "state.url: a Redis Cluster has only database 0: end the URL with /0 (or no database) "
        "(got 'redis://10.0.0.5:7000/1')"
    ]
    (error,) = errors_of(MINIMAL + "state: {url: 'redis://h:7000/0?db=2', cluster: true}\n")
    assert error.startswith("state.url: a Redis Cluster has only database 0")
    (error,) = errors_of(MINIMAL + "state: {url: 'memory://', cluster: true}\n")
    assert error.startswith("state.url: a Redis Cluster is named by one of its nodes: use redis://HOST:PORT/0")
    (error,) = errors_of(MINIMAL + "state: {url: 'redis://h:7000/0', cluster: true, prefix: 'tg{x}'}\n")
    assert error.startswith("state.prefix: on a Redis Cluster the prefix goes inside each key's hash tag")
    # A single Redis may use any database, as before.
    assert parse_config(MINIMAL + "state: {url: 'redis://h:6379/3'}\n", {}).config.state.cluster is False


def test_a_password_in_a_bad_state_url_is_not_echoed():
    (error,) = errors_of(MINIMAL + "state: {url: 'redis://:hunter2@h:7000/4', cluster: true}\n")
    assert error.startswith("state.url: a Redis Cluster has only database 0") and "hunter2" not in error
    (error,) = errors_of(MINIMAL + "state: {url: 'rediz://:hunter2@h:6379/0'}\n")
    assert error.startswith("state.url: use memory:// (one replica)") and "hunter2" not in error


def test_check_says_the_counters_live_on_a_cluster_without_its_password(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    text = MINIMAL + "keys: [{id: a, key: sk-a, rate_limits: {requests_per_minute: 5}}]\n"
    path.write_text(text + "state: {url: 'redis://:hunter2@10.0.0.5:7000/0', cluster: true}\n")
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(counters: redis://:**********@10.0.0.5:7000/0 (Redis Cluster))" in out and "hunter2" not in out


def test_a_providers_headers_must_be_sendable_and_not_the_requests_own():
    def with_headers(block: str) -> str:
        return MINIMAL.replace("billing_owner: openai/org-1", f"billing_owner: openai/org-1\n    headers: {block}")

    assert parse_config(with_headers("{x-team: ml, OpenAI-Project: proj_1}"), {}).config.providers["openai"].headers
    assert errors_of(with_headers("{Content-Type: text/plain}")) == [
        "providers.openai.headers: header 'Content-Type' is written by Tollgate for each request; "
        "remove it from `headers`"
    ]
    assert errors_of(with_headers('{"x team": a}')) == [
        "providers.openai.headers: 'x team' is not an HTTP header name (letters, digits and - are)"
    ]
    split = errors_of(with_headers('{x-token: "sk-very-secret\\r\\nhost: elsewhere"}'))
    assert split == [
        "providers.openai.headers: the value of header 'x-token' holds a line break or another control character"
    ]
