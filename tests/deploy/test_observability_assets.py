"""The alert rules and the Grafana dashboard parse as PromQL and query only series
(and labels) that the services export — taken from the metrics module itself."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import yaml

from switchboard_common import metrics
from tests.deploy.manifests import REPO

promql_parser = pytest.importorskip("promql_parser", reason="pip install promql-parser (a PromQL parser)")

OBSERVABILITY = REPO / "deploy" / "observability"
#: Labels Prometheus itself attaches to every scraped series.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service_name", "__name__"}


def selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(series name, label names matched) of every vector selector in a PromQL expression."""
    found: list[tuple[str, set[str]]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, {m.name for m in node.matchers.matchers}))

    promql_parser.walk(promql_parser.parse(expr), visit)
    yield from found


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
            for label in group.split(",") if label.strip()}


def check(expr: str, where: str) -> None:
    known = metrics.series()
    names = set()
    for name, labels in selectors(expr):
        assert name in known, f"{where}: {name} is not exported (known: {sorted(known)})"
        assert labels <= set(known[name]) | TARGET_LABELS, f"{where}: {name} has no label {labels - set(known[name])}"
        names.add(name)
    assert names, f"{where}: queries nothing"
    allowed = set().union(*(known[n] for n in names)) | TARGET_LABELS
    assert grouping_labels(expr) <= allowed, f"{where}: groups by a label no queried series has"


def alert_rules() -> list[dict]:  # type: ignore[type-arg]
    document = yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_are_valid_and_query_exported_series() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        check(rule["expr"], rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])


@pytest.mark.parametrize("topic, series", [
    ("error rate", "switchboard_requests_total"),
    ("latency", "switchboard_time_to_first_token_seconds_bucket"),
    ("budget burn", "switchboard_spend_micros_total"),
    ("deployment in cool-down", "switchboard_deployment_cooling_down"),
    ("budget nearly exhausted", "switchboard_budget_remaining_micros"),
])
def test_alerts_cover_the_required_topics(topic: str, series: str) -> None:
    assert any(name == series for rule in alert_rules() for name, _ in selectors(rule["expr"])), topic


def _grafana_to_promql(expr: str) -> str:
    """Grafana's variables replaced by what they expand to."""
    return expr.replace("$__rate_interval", "5m").replace('"$model"', '".*"').replace('"$team"', '".*"')


def test_dashboard_panels_query_exported_series() -> None:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "model", "team"}
    queried: set[str] = set()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = _grafana_to_promql(target["expr"])
            check(expr, panel["title"])
            queried |= {name for name, _ in selectors(expr)}
    exported = {name.removesuffix("_bucket") for name in metrics.series() if not name.endswith(("_count", "_sum"))}
    shown = {name.removesuffix("_bucket") for name in queried}
    assert exported - shown == set(), "every exported series has a panel"
