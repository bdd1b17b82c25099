"""Step 1 of tollgate launch-check, on the example config and on copies of it that
each lack one thing the launch rules ask for."""

from __future__ import annotations

from proxy.config import parse_config
from proxy.launch.context import LaunchContext
from proxy.launch.step import Findings
from proxy.launch.steps.ownership import check_ownership

from ..launch_configs import EXAMPLE, without_route_owner, without_verified


def ownership(text: str, route: str = "gpt-image-2") -> Findings:
    launch = LaunchContext(parse_config(text, {}).config, route, api=None)  # type: ignore[arg-type]  # no request
    found = Findings()
    check_ownership(launch, found)
    return found


def test_the_example_route_names_every_owner():
    found = ownership(EXAMPLE)
    assert found.problems == []
    assert found.evidence[0] == "route owner platform-team"
    assert found.evidence[1].startswith("openai: billing owner openai/org-acme, prices openai-official (official)")
    assert "acme: billing owner acme/acct-42, prices acme-2026-11 (provider)" in found.evidence[2]
    assert found.evidence[2].endswith("formats png, jpeg, webp, verified")


def test_a_route_without_an_owner_fails():
    found = ownership(without_route_owner())
    assert found.problems == ["routes.gpt-image-2.owner is not set: name the team that owns the route"]


def test_a_reseller_without_its_verified_record_fails():
    found = ownership(without_verified())
    assert len(found.problems) == 1
    assert found.problems[0].startswith("providers.acme (openai_compatible) has no `verified:` record")


def test_support_and_output_formats_are_required_and_must_hold_the_route_format():
    text = EXAMPLE.replace("    support: https://help.openai.com\n", "")
    text = text.replace(
        "    output_formats: [png, jpeg, webp]\n    verified:", "    output_formats: [png, jpeg]\n    verified:"
    )
    text = text.replace("    output_formats: [png, jpeg, webp]\n", "", 1)
    assert ownership(text).problems == [
        "providers.openai.support is not set: say where to go when it breaks",
        "providers.openai.output_formats is not set: list the image formats it returns (png, jpeg, webp)",
        "providers.acme.output_formats (png, jpeg) lacks the route's output format webp",
    ]


def test_an_unpriced_route_cannot_launch():
    text = EXAMPLE.replace("    review: required\n", "    review: required\n    unpriced: true\n")
    assert ownership(text).problems == ["routes.gpt-image-2 is `unpriced: true`: a launched route needs a price table"]
