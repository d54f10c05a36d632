"""Monitoring that ships with the chart: every metric name in the dashboards and alerts is one
the services export (read from their own metrics classes) or one of the documented CloudWatch
exporter names; every alert links to its runbook section; dashboards reach the Grafana sidecar."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from tests.chart.conftest import RELEASE, Rendered
from tests.support import REPO_ROOT

# PromQL words that are not metric names.
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def metrics_modules() -> list[str]:
    """Every metrics module of the kernel and of each service, wherever it sits in the package."""
    modules = ["gas_core.metrics"]
    for package in sorted((REPO_ROOT / "services").glob("*/gas_*")):
        for path in sorted(package.rglob("metrics.py")):
            modules.append(".".join(path.relative_to(package.parent).with_suffix("").parts))
    return modules


def takes_only_a_registry(value: Any) -> bool:
    try:
        parameters = inspect.signature(value).parameters
    except (TypeError, ValueError):
        return False
    others_required = any(
        p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for name, p in parameters.items() if name != "registry")
    return "registry" in parameters and not others_required


def sample_names(family: Metric) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES[family.type]}


def exported_metric_names() -> dict[str, set[str]]:
    """Instantiate every class/function of each metrics module that takes a registry, each into
    a fresh CollectorRegistry, and collect the series names it exposes."""
    by_module: dict[str, set[str]] = {}
    for name in metrics_modules():
        module = importlib.import_module(name)
        names: set[str] = set()
        for value in vars(module).values():
            if not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if value.__module__ != module.__name__ or not takes_only_a_registry(value):
                continue
            registry = CollectorRegistry()
            value(registry=registry)
            for family in registry.collect():
                names |= sample_names(family)
        by_module[module.__name__] = names
    return by_module


@pytest.fixture(scope="session")
def exported() -> dict[str, set[str]]:
    return exported_metric_names()


def promql_metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors ($__rate_interval, 5m)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end():].lstrip().startswith("("):
            continue  # a function
        if match.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def test_the_promql_name_reader_finds_metrics_and_skips_functions_and_labels() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, route) (rate(gas_http_request_seconds_bucket'
            '{namespace="$namespace",status=~"5.."}[$__rate_interval]))) > 1 unless on() '
            'count(up{job="x"}) > 0 and time() - foo_seconds offset 5m')
    assert promql_metric_names(expr) == {"gas_http_request_seconds_bucket", "up", "foo_seconds"}


def test_every_service_metrics_module_is_discovered(exported: dict[str, set[str]]) -> None:
    assert "gas_core.metrics" in exported
    assert "gas_annotator.metrics" in exported
    assert "gas_web.app.core.metrics" in exported
    assert {"gas_messages_total", "gas_message_seconds_bucket", "gas_messages_in_flight",
            "gas_worker_last_poll_timestamp_seconds"} <= exported["gas_core.metrics"]
    assert all(exported.values()), {m: n for m, n in exported.items() if not n}


def dashboards(rendered: Rendered) -> dict[str, dict[str, Any]]:
    boards = {}
    for config_map in rendered.of_kind("ConfigMap"):
        if "-dashboard-" in config_map["metadata"]["name"]:
            (text,) = config_map["data"].values()
            boards[config_map["metadata"]["name"]] = json.loads(text)
    return boards


def expressions(rendered: Rendered) -> list[tuple[str, str]]:
    found = []
    for name, board in dashboards(rendered).items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((f"{name}: {panel['title']}", target["expr"]))
    for rule in rendered.of_kind("PrometheusRule"):
        for group in rule["spec"]["groups"]:
            for alert in group["rules"]:
                found.append((f"alert {alert['alert']}", alert["expr"]))
    return found


def test_every_metric_in_dashboards_and_alerts_is_exported_or_a_documented_cloudwatch_name(
    rendered: Rendered, exported: dict[str, set[str]]
) -> None:
    cloudwatch = rendered.merged["monitoring"]["cloudwatch"]
    allowed = set().union(*exported.values()) | {
        v for k, v in cloudwatch.items() if k.endswith("Metric")}
    used = expressions(rendered)
    monitoring = rendered.merged["monitoring"]
    if monitoring["dashboards"]["enabled"] or monitoring["prometheusRule"]["enabled"]:
        assert used
    unknown = {(where, name) for where, expr in used for name in promql_metric_names(expr)
               if name not in allowed}
    assert not unknown, sorted(unknown)


def test_cloudwatch_names_are_documented_in_one_place_and_in_the_runbook() -> None:
    values = (REPO_ROOT / "charts/gas/values.yaml").read_text()
    runbook = (REPO_ROOT / "docs/operations.md").read_text()
    for name in re.findall(r"Metric: (aws_sqs_\w+)", values):
        assert name in runbook
    # The templates never spell a CloudWatch metric themselves, except the dashboards' list of
    # the defaults the JSON files use (replaced when values rename them): the same as values'.
    for template in (REPO_ROOT / "charts/gas/templates").glob("*"):
        if template.name != "dashboards.yaml":
            assert "aws_sqs_" not in template.read_text(), template.name
    defaults = yaml.safe_load(values)["monitoring"]["cloudwatch"]
    listed = dict(re.findall(r'^  "(\w+)" "(\w+)"', (
        REPO_ROOT / "charts/gas/templates/dashboards.yaml").read_text(), re.MULTILINE))
    assert listed == {k: defaults[k] for k in listed} and len(listed) == 4


def test_dashboards_are_the_json_files_with_renamed_cloudwatch_metrics_substituted(
    render_values: Any,
) -> None:
    files = {p.stem: json.loads(p.read_text())
             for p in (REPO_ROOT / "charts/gas/dashboards").glob("*.json")}
    rendered = render_values({"monitoring": {"cloudwatch": {
        "visibleMetric": "sqs_visible", "queueLabel": "queue_name"}}})
    boards = dashboards(rendered)
    assert {name.rsplit("-dashboard-", 1)[1] for name in boards} <= set(files)
    for name, board in boards.items():
        source = files[name.rsplit("-dashboard-", 1)[1]]
        assert [p["title"] for p in board["panels"]] == [p["title"] for p in source["panels"]]
        text = json.dumps(board)
        assert "aws_sqs_approximate_number_of_messages_visible_average" not in text
        assert "dimension_QueueName" not in text
    overview = json.dumps(boards["gas-dashboard-overview"])
    assert 'sqs_visible{queue_name=~\\"${prefix}-[a-z]+\\"}' in overview


def heading_anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(anchor)
    return anchors


def test_every_alert_links_to_its_runbook_section(renders: dict[str, Rendered]) -> None:
    anchors = heading_anchors((REPO_ROOT / "docs/operations.md").read_text())
    (rule,) = renders["defaults"].of_kind("PrometheusRule")
    alerts = [a for g in rule["spec"]["groups"] for a in g["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "GasDeadLetterMessages", "GasJobFailureRatioHigh", "GasAnnotatorOldestMessageAge",
        "GasAnnotatorBacklogWithoutReplicas", "GasWeb5xxRatioHigh", "GasWebLatencyP95High"}
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("docs/operations.md")
        assert url.split("#")[1] == alert["alert"].lower() in anchors, alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["for"]


def test_dashboards_reach_the_grafana_sidecar_an_overview_and_one_per_service(
    rendered: Rendered,
) -> None:
    settings = rendered.merged["monitoring"]["dashboards"]
    boards = dashboards(rendered)
    if not settings["enabled"]:
        assert not boards
        return
    expected = {"overview", *rendered.enabled_services()}
    assert {name.rsplit("-dashboard-", 1)[1] for name in boards} == expected
    for config_map in rendered.of_kind("ConfigMap"):
        if "-dashboard-" in config_map["metadata"]["name"]:
            assert config_map["metadata"]["labels"][settings["label"]] == settings["labelValue"]
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    overview = boards["gas-dashboard-overview"]
    titles = " | ".join(p["title"] for p in overview["panels"]).lower()
    for topic in ("jobs", "success ratio", "latency", "queue depths", "dead-letter", "replicas"):
        assert topic in titles
    for board in boards.values():
        positions = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]}
        assert len(positions) == len(board["panels"]), "panels overlap"


def test_the_service_monitor_scrapes_every_service_on_its_metrics_port(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["production-values"]
    (monitor,) = rendered.of_kind("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    for service in rendered.of_kind("Service"):
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}, service["metadata"]
    assert not renders["minimal-values"].of_kind("ServiceMonitor")


def test_the_public_ingress_cannot_reach_the_web_apps_metrics(rendered: Rendered) -> None:
    """The Ingress routes only the web Service's http port; /metrics is on the metrics port,
    which the web container serves itself (GAS_METRICS_PORT) and the Ingress never names."""
    for ingress in rendered.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] == {"name": "http"}
    web = [n for n, s in rendered.enabled_services().items() if s["kind"] == "web"]
    for name in web:
        config = rendered.get("ConfigMap", f"{RELEASE}-{name}")["data"]
        assert config["GAS_METRICS_PORT"] == "9100" != config["GAS_WEB_PORT"]
        deployment = rendered.get("Deployment", f"{RELEASE}-{name}")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == 9100
