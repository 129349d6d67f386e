"""Reading the monitoring files: every PromQL expression of the alert rules and the Grafana dashboards, parsed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RUNBOOK = ROOT / "docs" / "runbook.md"
# What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h", "$service": ".*"}
# Series Prometheus writes itself for every target rather than scraping them.
PROMETHEUS_OWN_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# Labels Prometheus adds to every scraped series (the target's): never in a service's exposition.
TARGET_LABELS = frozenset({"job", "instance", "retain_service"})
LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*(?P<label>\w+)\)$")


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]


@dataclass
class Query:
    where: str
    expr: str
    selectors: list[Selector] = field(default_factory=list)


def selectors_of(expr: str) -> list[Selector]:
    """Every series selector in a PromQL expression; raises ValueError when it does not parse."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    tree = promql_parser.parse(expr)
    found: list[Selector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names = frozenset(m.name for m in node.matchers.matchers)
            assert node.name, f"selector without a metric name in {expr!r}"
            found.append(Selector(node.name, names))

    promql_parser.walk(tree, visit)
    return found


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def dashboard(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-level panels and those nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def all_queries() -> list[Query]:
    queries = [Query(f"rules.yml {rule['alert']}", rule["expr"]) for rule in rules()]
    for path in DASHBOARDS:
        board = dashboard(path)
        for panel in panels(board):
            for target in panel.get("targets", []):
                queries.append(Query(f"{path.name} panel {panel['id']} {target['refId']}", target["expr"]))
        for variable in board["templating"]["list"]:
            match = LABEL_VALUES.match(variable["query"]["query"])
            assert match, f"{path.name}: variable {variable['name']} is not label_values(metric, label)"
            queries.append(
                Query(f"{path.name} variable {variable['name']}", f"{match['metric']}{{{match['label']}!=''}}")
            )
    return queries
