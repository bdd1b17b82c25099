"""A gateway or reseller, or a vendor through LiteLLM, carries no traffic until its
`verified:` record is in the config: `tollgate check` (and `serve`) refuse it."""

from __future__ import annotations

from policies.provider_verification import ProviderFacts, ProviderVerification
from proxy.cli import main

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
    facts = {
        "openai": ProviderFacts("openai", verified=False),
        "azure": ProviderFacts("azure", verified=False),
        "acme": ProviderFacts("openai_compatible", verified=False),
        "bedrock": ProviderFacts("litellm", verified=False),
        "checked": ProviderFacts("openai_compatible", verified=True),
    }
    assert [name for name, _ in ProviderVerification().unverified(facts)] == ["acme", "bedrock"]


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
