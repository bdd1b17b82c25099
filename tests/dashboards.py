"""The Grafana dashboards and the Prometheus rule file as the tests read them: their
panels, their PromQL and their variables, and PromQL made ready for a plain Prometheus."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULE_FILE = GRAFANA / "alerts" / "tollgate-rules.yml"
DATASOURCE_UID = "tollgate-prometheus"

# `$name` or `${name}`; Grafana's own start with `__`. `$1` (a label_replace group) is not a variable.
VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")
# What Grafana puts in place of its built-in intervals, as durations a test's few seconds of data fill.
BUILTIN_INTERVALS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
SELECTOR = re.compile(r"\b(tollgate_[a-z0-9_]+)(\{[^}]*\})?")
FALLBACK = " or on() vector(0)"  # a 0 where a counter has no series yet, rather than "No data"
LABEL_VALUES = re.compile(r"label_values\((?:(.+),\s*)?(\w+)\)")
COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)\s*(?=[0-9.])")


@dataclass(frozen=True)
class Query:
    where: str  # "tollgate-finance.json: Spend by team", "tollgate-rules.yml: TollgateHighFailureRate"
    expr: str


def load_dashboard(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, rows' collapsed panels included; rows themselves are only headings."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panels({"panels": panel.get("panels", [])})
        else:
            yield panel


def rows(dashboard: dict) -> list[dict]:
    return [panel for panel in dashboard["panels"] if panel["type"] == "row"]


def variables(dashboard: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def variable_query(variable: dict) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def dashboard_queries() -> list[Query]:
    return [
        Query(f"{path.name}: {panel['title']} [{target['refId']}]", target["expr"])
        for path in DASHBOARDS
        for panel in panels(load_dashboard(path))
        for target in panel["targets"]
    ]


def rule_groups() -> list[dict]:
    return yaml.safe_load(RULE_FILE.read_text())["groups"]


def alert_rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def rule_queries() -> list[Query]:
    return [Query(f"{RULE_FILE.name}: {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def used_variables(expr: str) -> set[str]:
    return {name for name in VARIABLE.findall(expr) if not name.startswith("__")}


def concrete(expr: str, values: dict[str, str] | None = None) -> str:
    """The PromQL Grafana would send: each variable as `values` says (".*", its "All"), each built-in
    interval as a fixed duration."""
    values = {**BUILTIN_INTERVALS, **(values or {})}
    return VARIABLE.sub(lambda match: values.get(match[1], ".*"), expr)


def selectors(expr: str) -> list[str]:
    """Each `tollgate_…{…}` vector selector in an expression, as a query of its own."""
    return [name + (matchers or "") for name, matchers in SELECTOR.findall(expr)]


def without_thresholds(expr: str) -> str:
    """An alert's expression with each comparison against a number made `bool`: every series it
    watches comes back (1 where the threshold is crossed, 0 where not) instead of none."""
    return COMPARISON.sub(lambda match: f"{match[1]} bool ", expr)
