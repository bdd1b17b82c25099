"""Client keys: digests only, constant-time comparison, route permissions."""

from __future__ import annotations

import hashlib

import pytest

from proxy.config.schema import ClientKey
from proxy.errors import AuthenticationFailed, PermissionDenied
from proxy.serving.auth import ANONYMOUS, KeyRing

KEYS = [
    ClientKey(id="web", key="sk-web-123", team="growth", routes=["gpt-image-2"]),
    ClientKey(id="batch", key_sha256=hashlib.sha256(b"sk-batch-456").hexdigest(), team="data", stage="validation"),
]


def test_without_a_keys_section_everyone_is_anonymous():
    assert KeyRing(None).authenticate(None) is ANONYMOUS


def test_a_key_or_its_digest_identifies_the_caller():
    ring = KeyRing(KEYS)
    web = ring.authenticate("Bearer sk-web-123")
    assert (web.key_id, web.team) == ("web", "growth")
    batch = ring.authenticate("bearer sk-batch-456")
    assert (batch.key_id, batch.team, batch.stage) == ("batch", "data", "validation")


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Basic abc", "Bearer sk-web-124"])
def test_a_missing_or_wrong_key_is_a_401(header):
    with pytest.raises(AuthenticationFailed) as caught:
        KeyRing(KEYS).authenticate(header)
    assert caught.value.status == 401 and "sk-web-124" not in caught.value.message


def test_a_key_limited_to_some_routes_gets_403_elsewhere():
    web = KeyRing(KEYS).authenticate("Bearer sk-web-123")
    web.check_route("gpt-image-2")
    with pytest.raises(PermissionDenied) as caught:
        web.check_route("gpt-5.4")
    assert caught.value.status == 403 and "gpt-image-2" in caught.value.message


def test_the_ring_holds_no_key_in_clear():
    ring = KeyRing(KEYS)
    assert "sk-web-123" not in repr(vars(ring))


def test_keys_new_prints_a_key_and_the_config_line_with_its_hash(capsys):
    from proxy.cli import main
    from proxy.config import parse_config

    assert main(["keys", "new", "--id", "web-app", "--team", "growth"]) == 0
    out = capsys.readouterr().out
    key = next(line.strip() for line in out.splitlines() if line.strip().startswith("tg-"))
    line = next(line.strip() for line in out.splitlines() if line.strip().startswith("- {id: web-app"))
    assert key not in line and hashlib.sha256(key.encode()).hexdigest() in line
    config = parse_config(
        f"""
providers:
  p: {{kind: openai, api_key: k, billing_owner: o}}
routes:
  r: {{targets: [{{provider: p, model: m}}]}}
keys:
  {line}
""",
        {},
    ).config
    principal = KeyRing(config.keys).authenticate(f"Bearer {key}")
    assert (principal.key_id, principal.team) == ("web-app", "growth")
