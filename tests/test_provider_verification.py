"""A gateway or reseller, or a vendor through LiteLLM, carries no traffic until its
`verified:` record is in the config: `tollgate check` (and `serve`) refuse it."""

from __future__ import annotations

from proxy.cli import main
from proxy.config import parse_config
from proxy.config.checks import verification_issues

CONFIG = """
policies:
  provider_verification: {{enabled: {enabled}}}
price_tables:
  acme-2026-11:
    source: provider
    provider: acme
    effective: 2026-11-01
    url: https://acme.example/pricing
    models:
      gpt-image-2: {{image: {{low: {{1024x1024: 0.009}}}}}}
providers:
  acme:
    kind: openai_compatible
    base_url: https://gw.acme.example/v1
    api_key: k
    billing_owner: acme/acct-1
    price_table: acme-2026-11
routes:
  gpt-image-2:
    targets: [{{provider: acme, model: gpt-image-2}}]
"""


def test_only_wrappers_and_litellm_vendors_need_a_record():
    providers = """
providers:
  openai: {kind: openai, api_key: k, billing_owner: o}
  azure: {kind: azure, base_url: https://az.example, api_version: v, api_key: k, billing_owner: o}
  acme: {kind: openai_compatible, base_url: https://gw.example/v1, api_key: k, billing_owner: o}
  bedrock: {kind: litellm, billing_owner: o}
  simulated: {kind: simulator, billing_owner: o}
  checked:
    kind: openai_compatible
    base_url: https://gw2.example/v1
    api_key: k
    billing_owner: o
    verified: {owner: o, quota: q, export_rights: e, privacy: p, failed_call_billing: f}
routes:
  r: {targets: [{provider: openai, model: m}]}
"""
    config = parse_config(providers, {}).config
    assert [issue.location for issue in verification_issues(config)] == [
        "providers.acme.verified",
        "providers.bedrock.verified",
    ]


def test_check_refuses_an_unverified_reseller_and_says_what_to_record(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(enabled="true"))
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "providers.acme.verified: a provider of kind 'openai_compatible' needs a `verified:` record" in err
    assert "owner, quota, export_rights, privacy, failed_call_billing" in err


def test_the_rule_can_be_turned_off(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(enabled="false"))
    assert main(["check", "--config", str(path)]) == 0
