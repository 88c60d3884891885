"""The Grafana dashboard (deploy/grafana/craton-wf.json): a Grafana 10 dashboard
whose panels ask a chosen Prometheus data source for metrics the service serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from craton_wf.process_metrics import process_metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "craton-wf.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_it_is_a_grafana_10_dashboard_with_a_prometheus_source_variable(
    dashboard: dict[str, Any],
) -> None:
    assert dashboard["uid"] == "craton-wf" and dashboard["title"] == "craton-wf"
    assert dashboard["schemaVersion"] >= 38  # Grafana 10
    assert dashboard["id"] is None  # importable into any Grafana
    (variable,) = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    assert variable["name"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        assert panel["type"] in {"stat", "timeseries"}
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_no_two_panels_overlap(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_metric_it_asks_for_is_served(dashboard: dict[str, Any], api: Any) -> None:
    """Names from a real scrape of the app (the fleet's families) and from the
    process registry (whose labelled families have no sample before a first event)."""
    from prometheus_client.parser import text_string_to_metric_families

    families = list(text_string_to_metric_families(api.get("/metrics").text))
    families += list(process_metrics().registry.collect())
    served = {
        family.name + suffix
        for family in families
        if family.name.startswith("craton_")
        for suffix in SUFFIXES.get(family.type, ("",))
    }
    asked = {
        name
        for panel in _panels(dashboard)
        for target in panel["targets"]
        for name in re.findall(r"\bcraton_[a-z_]+", target["expr"])
    }
    assert asked and asked <= served, sorted(asked - served)
    documented = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    bases = {re.sub(r"_(bucket|count|sum)$", "", name) for name in asked}
    assert all(f"`{base}`" in documented for base in bases), bases
