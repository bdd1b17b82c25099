"""`tollgate diff OLD NEW`: what a change does to routes, providers, billing owners,
price tables and the other settings, with secrets never shown; its exit codes."""

from __future__ import annotations

import pytest

from proxy.cli import main
from proxy.config import parse_config
from proxy.config.diff import diff_configs, render

ENV = {"OPENAI_KEY": "sk-old-openai-secret", "ADMIN_KEY": "adm-old-secret"}

OLD = """
server:
  admin_key: ${ADMIN_KEY}
ledger:
  url: sqlite:///old.db
price_tables:
  acme-2026-11:
    source: provider
    provider: acme
    effective: 2026-11-01
    url: https://acme.example/pricing
    models:
      gpt-image-2:
        image: {low: {1024x1024: 0.009}, medium: {1024x1024: 0.06}}
      gpt-image-1:
        image: {low: {1024x1024: 0.011}}
providers:
  openai:
    kind: openai
    api_key: ${OPENAI_KEY}
    billing_owner: openai/org-acme
    price_table: openai-official
  acme:
    kind: openai_compatible
    base_url: https://gw.acme.example/v1
    api_key: sk-acme-old
    billing_owner: acme/acct-42
    price_table: acme-2026-11
    verified: {owner: a, quota: q, export_rights: e, privacy: p, failed_call_billing: not billed}
routes:
  gpt-image-2:
    owner: platform-team
    targets: [{provider: openai, model: gpt-image-2, weight: 1}]
    fallbacks: [{provider: acme, model: gpt-image-2}]
    timeout_s: 180
    retries: 1
  gpt-image-1:
    targets: [{provider: acme, model: gpt-image-1}]
"""


def configs(old: str, new: str, new_env: dict[str, str] = ENV):
    return parse_config(old, ENV).config, parse_config(new, new_env).config


def test_identical_configs_have_no_difference():
    assert diff_configs(*configs(OLD, OLD + "\n# a comment\n")) == []


def test_a_route_switch_shows_targets_fallbacks_weights_timeouts_and_retries():
    new = (
        OLD.replace("    fallbacks: [{provider: acme, model: gpt-image-2}]\n", "").replace(
            "targets: [{provider: openai, model: gpt-image-2, weight: 1}]",
            "targets: [{provider: acme, model: gpt-image-2, weight: 3}, {provider: openai, model: gpt-image-2}]",
        )
    ).replace("timeout_s: 180\n    retries: 1", "timeout_s: 120\n    retries: 2")
    (change,) = diff_configs(*configs(OLD, new))
    assert (change.section, change.name, change.kind) == ("routes", "gpt-image-2", "changed")
    assert change.details == (
        "targets: openai/gpt-image-2 (weight 1) → acme/gpt-image-2 (weight 3), openai/gpt-image-2 (weight 1)",
        "fallbacks: acme/gpt-image-2 → (none)",
        "timeout_s: 180 → 120",
        "retries: 1 → 2",
    )


def test_routes_added_and_removed():
    new = OLD.replace("  gpt-image-1:\n    targets: [{provider: acme, model: gpt-image-1}]\n", "") + (
        "  gpt-5.4:\n"
        "    targets: [{provider: openai, model: gpt-5.4}]\n"
        "    fallbacks: [{provider: acme, model: gpt-5.4}]\n"
    )
    new = new.replace(
        "      gpt-image-1:\n        image: {low: {1024x1024: 0.011}}\n",
        "      gpt-5.4:\n        tokens: {text_input: 1.25}\n",
    )
    text = render(diff_configs(*configs(OLD, new)))
    assert "  + gpt-5.4: targets openai/gpt-5.4 (weight 1); fallbacks acme/gpt-5.4" in text
    assert "  - gpt-image-1" in text


def test_provider_changes_name_each_setting_and_never_show_a_secret():
    new = (
        OLD.replace("https://gw.acme.example/v1", "https://gw2.acme.example/v1")
        .replace("sk-acme-old", "sk-acme-new")
        .replace("kind: openai_compatible", "kind: litellm")
        .replace("billing_owner: acme/acct-42", "billing_owner: acme/acct-43")
    )
    changes = diff_configs(*configs(OLD, new, {**ENV, "OPENAI_KEY": "sk-new-openai-secret"}))
    text = render(changes)
    providers = {change.name: change for change in changes if change.section == "providers"}
    assert providers["openai"].details == ("api_key changed",)
    assert set(providers["acme"].details) == {
        "kind: openai_compatible → litellm",
        "base_url: https://gw.acme.example/v1 → https://gw2.acme.example/v1",
        "api_key changed",
        "billing_owner: acme/acct-42 → acme/acct-43",
    }
    for secret in ("sk-acme-old", "sk-acme-new", "sk-old-openai-secret", "sk-new-openai-secret"):
        assert secret not in text


def test_a_password_in_a_url_is_never_shown():
    old = OLD.replace("https://gw.acme.example/v1", "https://user:pw-one@gw.acme.example/v1")
    new = OLD.replace("https://gw.acme.example/v1", "https://user:pw-two@gw.acme.example/v1")
    (change,) = diff_configs(*configs(old, new))
    assert change.details == ("base_url changed",)


def test_billing_owners_added_removed_and_moved():
    beta = "  beta:\n    kind: openai\n    api_key: sk-beta\n    billing_owner: beta/acct-1\n"
    new = OLD.replace("billing_owner: acme/acct-42", "billing_owner: openai/org-acme").replace(
        "providers:\n", "providers:\n" + beta, 1
    )
    owners = [change for change in diff_configs(*configs(OLD, new)) if change.section == "billing owners"]
    assert [(change.name, change.kind, change.details) for change in owners] == [
        ("openai/org-acme", "changed", ("billed for openai → openai, acme",)),
        ("acme/acct-42", "removed", ("was billed for acme",)),
        ("beta/acct-1", "added", ("billed for beta",)),
    ]


def test_price_changes_per_model_and_table():
    new = OLD.replace("medium: {1024x1024: 0.06}", "medium: {1024x1024: 0.07}").replace(
        "effective: 2026-11-01", "effective: 2026-12-01"
    )
    (change,) = diff_configs(*configs(OLD, new))
    assert (change.section, change.name) == ("price tables", "acme-2026-11")
    assert change.details == ("effective: 2026-11-01 → 2026-12-01", "gpt-image-2.image.medium.1024x1024: 0.06 → 0.07")


def test_other_settings_mark_what_waits_for_a_restart_and_hide_the_admin_key():
    old, new = configs(OLD, OLD.replace("sqlite:///old.db", "sqlite:///new.db"))
    _, new_admin = configs(OLD, OLD, {**ENV, "ADMIN_KEY": "adm-new-secret"})
    assert render(diff_configs(old, new)) == (
        "other settings\n  ~ ledger.url: sqlite:///old.db → sqlite:///new.db (takes effect at the next restart)"
    )
    text = render(diff_configs(old, new_admin))
    assert text == "other settings\n  ~ server.admin_key changed"


def test_console_keys_are_compared_by_id_and_their_secrets_never_shown():
    with_ana = OLD + "console:\n  keys:\n    - {id: ana, key: rev-secret-old, role: reviewer}\n"
    moved = with_ana.replace("rev-secret-old, role: reviewer", "rev-secret-new, role: finance")
    added = render(diff_configs(*configs(OLD, with_ana)))
    assert added == "other settings\n  ~ console.keys.ana: added {key: **********, key_sha256: (none), role: reviewer}"
    changed = render(diff_configs(*configs(with_ana, moved)))
    assert changed == "other settings\n  ~ console.keys.ana.key changed\n  ~ console.keys.ana.role: reviewer → finance"
    assert "rev-secret" not in added + changed


# --- the command --------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(OLD)
    return old, new


def test_tollgate_diff_exits_0_when_identical_and_1_when_they_differ(files, capsys):
    old, new = files
    new.write_text(OLD)
    assert main(["diff", str(old), str(new)]) == 0
    assert "no difference" in capsys.readouterr().out
    new.write_text(OLD.replace("retries: 1", "retries: 3"))
    assert main(["diff", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "routes\n  ~ gpt-image-2: retries: 1 → 3" in out
    assert "sk-old-openai-secret" not in out


def test_tollgate_diff_exits_2_and_prints_every_error_of_both_files(files, capsys):
    old, new = files
    old.write_text(OLD.replace("provider: openai, model: gpt-image-2", "provider: opnai, model: gpt-image-2"))
    new.write_text(OLD.replace("timeout_s: 180", "timeout: 180").replace("retries: 1", "retries: -1"))
    assert main(["diff", str(old), str(new)]) == 2
    err = capsys.readouterr().err
    assert "unknown provider 'opnai'; did you mean 'openai'?" in err
    assert "routes.gpt-image-2.timeout: unknown key 'timeout'; did you mean 'timeout_s'?" in err
    assert "routes.gpt-image-2.retries" in err
