"""The Grafana dashboards, provisioning files and alert rules hold together without a
server: every panel queries the provisioned data source, every variable it uses is
defined, the provisioning points at files that exist, every alert is complete.
(tests/e2e/test_prometheus_e2e.py runs every query against a real Prometheus.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from providers.errors import FailureReason

from .dashboards import (
    DASHBOARDS,
    DATASOURCE_UID,
    GRAFANA,
    ROOT,
    alert_rules,
    dashboard_queries,
    load_dashboard,
    panels,
    rows,
    rule_queries,
    used_variables,
    variable_query,
    variables,
)

PROVISIONING = GRAFANA / "provisioning"
# `- ./grafana/dashboards:/var/lib/grafana/dashboards/tollgate:ro` in the README's compose example
MOUNT = re.compile(r"^\s*- \./(grafana/[^:\s]+):(/[^:\s]+)", re.MULTILINE)
FILTERS = ("route", "provider", "billing_owner")
REASONS = re.compile(r'reason=~?"([^"]*)"')


def mounts() -> dict[str, Path]:
    """Where the README's compose example puts this folder's files in Grafana's container."""
    return {inside: ROOT / here for here, inside in MOUNT.findall((GRAFANA / "README.md").read_text())}


def in_repository(path: str) -> Path:
    """A path inside Grafana's container, mapped back to the repository through the mounts."""
    for inside, here in mounts().items():
        if path == inside or path.startswith(inside + "/"):
            return here / Path(path).relative_to(inside)
    raise AssertionError(f"{path} is not under any folder grafana/README.md mounts: {sorted(mounts())}")


def provisioning(kind: str) -> list[dict]:
    files = sorted((PROVISIONING / kind).glob("*.yml"))
    assert files, f"no provisioning file in {PROVISIONING / kind}"
    return [yaml.safe_load(path.read_text()) for path in files]


def test_there_is_a_finance_and_a_platform_dashboard():
    boards = {load_dashboard(path)["uid"]: load_dashboard(path) for path in DASHBOARDS}
    assert set(boards) == {"tollgate-finance", "tollgate-platform"}
    for board in boards.values():
        assert board["title"] and board["schemaVersion"] >= 36 and board["timezone"] == "utc"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_panel_has_a_title_the_provisioned_data_source_and_a_query(path: Path):
    board = load_dashboard(path)
    found = list(panels(board))
    assert len(found) >= 10
    for panel in found:
        assert panel.get("title"), panel
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert target.get("datasource", panel["datasource"])["uid"] == DATASOURCE_UID, panel["title"]
    assert all(row["title"] and not row.get("targets") for row in rows(board))
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_variable_used_is_defined_and_the_filters_are_label_values_queries(path: Path):
    board = load_dashboard(path)
    defined = variables(board)
    for panel in panels(board):
        for target in panel["targets"]:
            missing = used_variables(target["expr"]) - set(defined)
            assert not missing, f"{panel['title']}: {missing} not in templating"
    for name in FILTERS:
        variable = defined[name]
        assert variable["type"] == "query" and variable["datasource"]["uid"] == DATASOURCE_UID
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
        assert re.fullmatch(rf"label_values\(tollgate_\w+(\{{.*\}})?, {name}\)", variable_query(variable))
    # each filter narrows some panel
    exprs = " ".join(target["expr"] for panel in panels(board) for target in panel["targets"])
    assert all(f'=~"${name}"' in exprs for name in FILTERS)


def test_the_data_source_is_provisioned_with_the_uid_the_dashboards_use():
    (datasources,) = provisioning("datasources")
    (source,) = datasources["datasources"]
    assert datasources["apiVersion"] == 1
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus" and source["access"] == "proxy"
    assert source["url"] in ("http://prometheus:9090", "${PROMETHEUS_URL}")


def test_the_dashboard_provider_points_at_the_dashboards_folder():
    (dashboards,) = provisioning("dashboards")
    (provider,) = dashboards["providers"]
    assert dashboards["apiVersion"] == 1 and provider["type"] == "file"
    folder = in_repository(provider["options"]["path"])
    assert sorted(folder.glob("*.json")) == DASHBOARDS
    # and the provisioning files themselves are mounted where Grafana looks for them
    for kind in ("datasources", "dashboards"):
        assert in_repository(f"/etc/grafana/provisioning/{kind}") == PROVISIONING / kind


def test_every_alert_rule_waits_has_a_severity_and_says_what_is_wrong():
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "TollgateHighFailureRate",
        "TollgateImageLatencyHigh",
        "TollgateSpendRateHigh",
        "TollgateLedgerWriteFailures",
        "TollgateLedgerBacklogHigh",
    }
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "tollgate_" in rule["expr"], rule["alert"]


def test_the_failure_reasons_queried_are_the_proxys_own():
    """A reason misspelt in an alternation (`timeuot|upstream_5xx`) still finds the others' series;
    the closed set in providers/errors.py catches it."""
    known = {reason.value for reason in FailureReason}
    exprs = [query.expr for query in dashboard_queries() + rule_queries()]
    queried = [value for expr in exprs for values in REASONS.findall(expr) for value in values.split("|")]
    assert queried and set(queried) <= known, set(queried) - known
