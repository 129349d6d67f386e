"""The alert rules and dashboards are well-formed: PromQL that parses, Grafana JSON Grafana can provision, and a
runbook section for every alert. (That the metrics they name exist is checked against running services in
test_platform_metrics.py.)"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.ops.monitoring import (
    DASHBOARDS,
    ROOT,
    RUNBOOK,
    all_queries,
    dashboard,
    panels,
    rule_groups,
    rules,
    selectors_of,
)

SEVERITIES = {"critical", "warning"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
DATASOURCE_UID = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())[
    "datasources"
][0]["uid"]
PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "table", "gauge", "text", "heatmap", "state-timeline"}

# The part of Grafana's dashboard model that provisioning and rendering rely on.
GRID_POS = {
    "type": "object",
    "required": ["h", "w", "x", "y"],
    "properties": {
        "h": {"type": "integer", "minimum": 1},
        "w": {"type": "integer", "minimum": 1, "maximum": 24},
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
    },
}
TARGET = {
    "type": "object",
    "required": ["refId", "expr", "datasource"],
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "expr": {"type": "string", "minLength": 1},
        "datasource": {"$ref": "#/$defs/datasource"},
        "legendFormat": {"type": "string"},
    },
}
PANEL = {
    "type": "object",
    "required": ["id", "type", "title", "gridPos"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "type": {"enum": sorted(PANEL_TYPES)},
        "title": {"type": "string", "minLength": 1},
        "gridPos": GRID_POS,
        "datasource": {"$ref": "#/$defs/datasource"},
        "targets": {"type": "array", "items": TARGET},
        "panels": {"type": "array", "items": {"$ref": "#/$defs/panel"}},
        "fieldConfig": {"type": "object", "required": ["defaults"]},
        "options": {"type": "object"},
    },
}
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "title", "panels", "schemaVersion", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "editable": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"]},
        "panels": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/panel"}},
    },
    "$defs": {
        "panel": PANEL,
        "datasource": {
            "type": "object",
            "required": ["type", "uid"],
            "properties": {"type": {"const": "prometheus"}, "uid": {"const": DATASOURCE_UID}},
        },
    },
}


@pytest.mark.parametrize("query", all_queries(), ids=lambda query: query.where)
def test_every_expression_parses_as_promql(query: Any) -> None:
    assert selectors_of(query.expr), f"{query.where}: no series selector"


def test_there_are_two_dashboards_with_distinct_uids() -> None:
    boards = [dashboard(path) for path in DASHBOARDS]
    assert {path.name for path in DASHBOARDS} == {"overview.json", "retention.json"}
    assert len({board["uid"] for board in boards}) == len(boards)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_is_valid_grafana_json_with_unique_panel_ids_and_no_overlap(path: Any) -> None:
    board = dashboard(path)
    jsonschema.validate(board, DASHBOARD_SCHEMA)
    every_panel = panels(board)
    ids = [panel["id"] for panel in every_panel]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    for panel in every_panel:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['id']} runs off the grid"
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), f"panel {panel['id']} repeats a refId"
        assert panel["type"] == "row" or refs, f"panel {panel['id']} queries nothing"
    cells: dict[tuple[int, int], int] = {}
    for panel in board["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {panel['id']} overlap"
                cells[(x, y)] = panel["id"]


def test_dashboards_are_provisioned_from_where_compose_mounts_them() -> None:
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/retain.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_rule_file_has_the_shape_prometheus_loads() -> None:
    groups = rule_groups()
    assert len({group["name"] for group in groups}) == len(groups)
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule["alert"]
        assert "for" not in rule or DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_the_issue_asks_for_is_there() -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in rules()}
    wanted = {
        "RetainServiceDown": "up{",
        "RetainHigh5xxRate": 'status=~"5.."',
        "RetainConsumerLagGrowing": "deriv(retain_consumer_lag",
        "RetainConsumerLagOver60s": "> 60",
        "RetainDeadLettered": "retain_dead_lettered_total",
        "RetainOutboxNotDraining": "retain_outbox_backlog",
        "RetainSlaBreachRate": "sla.breached",
        "RetainRefitFailing": 'outcome="failed"',
        "RetainKpiAnomaly": "retain_kpi_anomalies_total",
    }
    for alert, fragment in wanted.items():
        assert fragment in expressions[alert], alert


def test_summaries_use_only_labels_the_expression_keeps() -> None:
    for rule in rules():
        expr = rule["expr"]
        for label in re.findall(r"\$labels\.(\w+)", rule["annotations"]["summary"]):
            # Aggregations keep only their `by` labels; a bare selector keeps the target's too.
            kept = re.findall(r"by \(([^)]*)\)", expr)
            kept_labels = {name.strip() for group in kept for name in group.split(",")}
            if not kept:
                kept_labels |= {"job", "instance", "retain_service"}
            assert label in kept_labels, f"{rule['alert']}: summary uses {label}, which {expr!r} drops"


def test_every_alert_has_a_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in rules():
        runbook = rule["annotations"]["runbook"]
        path, _, anchor = runbook.partition("#")
        assert (ROOT / path).resolve() == RUNBOOK.resolve()
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"docs/runbook.md has no section for {rule['alert']}"
