"""The chart's dashboards and alerts against a real Prometheus scraping the real local stack.

`gas dev`'s stack (every service as its own process, each on the metrics port DevStack gives it)
runs a free user's job through its whole life: annotated, archived after a short retention,
restored on an upgrade to premium, thawed, with its emails. A real Prometheus scrapes every
service meanwhile. Then every query of every Grafana dashboard must parse and return at least
one series, and every alert expression must parse: a panel on a metric nobody exports fails.

What Kubernetes adds is mimicked honestly in the scrape configuration: the ServiceMonitor's
`namespace`, `pod` and `service` labels. The SQS metrics come in production from CloudWatch
through an exporter (YACE); the emulator has no CloudWatch, so a small exporter here serves the
same metric names (the chart's values) from the emulator's queues.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gas_cli.client import GasClient
from gas_cli.dev import SERVICES
from gas_core.aws import AwsClients
from gas_core.metrics import MetricsServer
from gas_core.resources import Queue
from tests.browser.local_stack import LocalStack, running_stack
from tests.support import REPO_ROOT, free_port, require_or_skip

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAMESPACE = "gas"  # what the ServiceMonitor's namespace label would say
SCRAPE_SECONDS = 1
# Grafana's $__rate_interval: long enough to cover the whole test run, so a rate over it sees
# everything the run did.
RATE_INTERVAL = "10m"
RETENTION_SECONDS = 3
STEP_TIMEOUT_SECONDS = 180
CHART_DIR = REPO_ROOT / "charts" / "gas"


class SqsAsCloudWatch(Collector):
    """The three SQS metrics the chart reads from CloudWatch (names from the chart's values),
    computed from the emulator's queues as CloudWatch would report them."""

    def __init__(self, aws: AwsClients, queues: list[str], names: dict[str, str]) -> None:
        self.aws, self.queues, self.names = aws, queues, names

    def collect(self) -> Iterator[GaugeMetricFamily]:
        label = self.names["queueLabel"]
        visible = GaugeMetricFamily(self.names["visibleMetric"], "visible", labels=[label])
        in_flight = GaugeMetricFamily(self.names["inFlightMetric"], "in flight", labels=[label])
        oldest = GaugeMetricFamily(self.names["oldestAgeMetric"], "oldest age", labels=[label])
        for name in self.queues:
            url = self.aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = self.aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])[
                "Attributes"]
            visible.add_metric([name], float(attributes["ApproximateNumberOfMessages"]))
            in_flight.add_metric([name], float(attributes["ApproximateNumberOfMessagesNotVisible"]))
            oldest.add_metric([name], _oldest_message_age(name))
        yield from (visible, in_flight, oldest)


def _oldest_message_age(queue: str) -> float:
    """ApproximateAgeOfOldestMessage exists only in CloudWatch: read the emulator's queue (it
    runs in this process) for the oldest message not yet deleted."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    messages = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues[queue]._messages
    sent = [int(m.sent_timestamp) for m in messages if m.sent_timestamp]
    return max(0.0, time.time() - min(sent) / 1000) if sent else 0.0


def render_chart(prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(dashboards, alert rules, monitoring values) of the chart rendered for this stack."""
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
    chart = helm.Chart.load(str(CHART_DIR))
    try:
        values = {"config": {"namePrefix": prefix}}
        manifests = chart.render(values, name="gas", namespace=NAMESPACE)
        monitoring = chart.merge_values(values)["monitoring"]
    finally:
        chart.close()
    docs = [d for path, text in manifests.items() if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    boards = [json.loads(text) for d in docs if d["kind"] == "ConfigMap"
              and "-dashboard-" in d["metadata"]["name"] for text in d["data"].values()]
    rules = [r for d in docs if d["kind"] == "PrometheusRule"
             for g in d["spec"]["groups"] for r in g["rules"]]
    return boards, rules, monitoring


def grafana_expr(expr: str, board: dict[str, Any]) -> str:
    """The query Grafana would send: its variables replaced by the dashboard's own values."""
    values = {"__rate_interval": RATE_INTERVAL, "__interval": "1m"}
    for variable in board["templating"]["list"]:
        current = variable.get("current") or {}
        if "value" in current:
            values[variable["name"]] = str(current["value"])

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown Grafana variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", substitute, expr)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> dict[str, Any]:
        query = urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=30) as r:
                return dict(json.load(r))
        except urllib.error.HTTPError as error:  # 400: the expression does not parse
            return dict(json.loads(error.read()))

    def series(self, expr: str) -> list[Any]:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return list(answer["data"]["result"])


@pytest.fixture
def stack(stack_reference: tuple[Path, Path], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    # A short retention through the caller's environment, as `GAS_FREE_RETENTION_SECONDS=3
    # make run` would, so the archive, restore and thaw happen within the test.
    monkeypatch.setenv("GAS_FREE_RETENTION_SECONDS", str(RETENTION_SECONDS))
    # A handler that meets a transient error retries after 1 s, not the default 5 s doubling.
    monkeypatch.setenv("GAS_WORKER_RETRY_BASE_SECONDS", "1")
    monkeypatch.setenv("GAS_WORKER_RETRY_MAX_SECONDS", "10")
    with running_stack(tmp_path / "state", stack_reference[0]) as local:
        yield local


def metrics_ports(stack: LocalStack) -> dict[str, int]:
    """Each service's metrics port, as `gas dev` reports it when it starts the service."""
    found = dict(re.findall(r"started (\w+) \(pid \d+, metrics on :(\d+)\)",
                            "\n".join(stack.output.lines)))
    assert set(found) == {s.name for s in SERVICES}, stack.output.tail()
    return {name: int(port) for name, port in found.items()}


def start_prometheus(tmp_path: Path, targets: dict[str, int], exporter_port: int) -> (
        tuple[subprocess.Popen[bytes], Prometheus]):
    binary = shutil.which("prometheus")
    require_or_skip(binary is not None,
                    "prometheus is not installed (Debian: apt-get install prometheus)")
    assert binary is not None
    jobs: list[dict[str, Any]] = [{
        # What the ServiceMonitor gives each series: the service's own labels kept
        # (honorLabels), plus namespace, pod and service.
        "job_name": name,
        "honor_labels": True,
        "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {
            "namespace": NAMESPACE, "pod": f"gas-{name}-0", "service": name}}],
    } for name, port in targets.items()]
    jobs.append({"job_name": "cloudwatch", "honor_labels": True,
                 "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]})
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s",
                   "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "scrape_configs": jobs}))
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return process, Prometheus(url)
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise AssertionError("prometheus did not become ready")


def wait_for(what: str, probe: Any, stack: LocalStack) -> Any:
    deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{stack.output.tail()}")


def gas(*args: str, config: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "gas_cli.main", *args, "--config-dir",
                             str(config)], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=180, check=False)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def run_a_job_through_its_life(stack: LocalStack, sample: Path, config: Path) -> None:
    """Submit as a free user, wait for the archive, upgrade to premium, wait for the thaw."""
    gas("login", "--dev-user", "prom", "--api-url", stack.web_url, config=config)
    submitted = gas("submit", str(sample), "--wait", config=config)
    match = re.search(r"Submitted job (\w+)", submitted)
    assert match, submitted
    client = GasClient(stack.web_url, "dev:prom")

    def storage() -> str:
        return str(client.json("GET", f"/api/v1/jobs/{match.group(1)}")["storage"])

    wait_for("the archive", lambda: storage() == "archived", stack)
    client.json("POST", "/api/v1/me/tier", json={"tier": "premium"})
    wait_for("the thaw", lambda: storage() == "hot", stack)
    client.json("GET", "/api/v1/jobs")  # and some plain web traffic


def test_every_dashboard_panel_and_alert_works_against_the_running_stack(
    stack: LocalStack, stack_reference: tuple[Path, Path], tmp_path: Path,
) -> None:
    prefix = stack.settings.names.prefix
    boards, rules, monitoring = render_chart(prefix)
    assert boards and rules
    queues = [stack.settings.names.queue(q) for q in Queue] + [
        stack.settings.names.dlq(q) for q in Queue]
    registry = CollectorRegistry()
    registry.register(SqsAsCloudWatch(stack.aws, queues, monitoring["cloudwatch"]))
    exporter = MetricsServer(port=free_port(), registry=registry, host="127.0.0.1").start()
    prometheus_process, prometheus = start_prometheus(
        tmp_path, metrics_ports(stack), exporter.port)
    try:
        run_a_job_through_its_life(stack, stack_reference[1], tmp_path / "config")
        # Every target up, and scraped again after the last of the run's work.
        wait_for("every target scraped", lambda: len(prometheus.series("up == 1"))
                 == len(SERVICES) + 1, stack)
        thawed = 'gas_thawer_jobs_total{outcome="thawed"}'
        wait_for("the thaw in Prometheus", lambda: prometheus.series(thawed), stack)
        time.sleep(3 * SCRAPE_SECONDS)  # a few scrapes more, so rates see the last changes

        empty, unparsable = [], []
        for board in boards:
            for panel in board["panels"]:
                where = f"{board['title']}: {panel['title']}"
                found = 0
                for target in panel["targets"]:
                    answer = prometheus.query(grafana_expr(target["expr"], board))
                    if answer["status"] != "success":
                        unparsable.append((where, target["expr"], answer.get("error")))
                        continue
                    found += len(answer["data"]["result"])
                if not found:
                    empty.append(where)
        for rule in rules:
            answer = prometheus.query(rule["expr"])
            if answer["status"] != "success":
                unparsable.append((rule["alert"], rule["expr"], answer.get("error")))
        assert not unparsable, unparsable
        assert not empty, f"panels without any series: {empty}"
    finally:
        prometheus_process.terminate()
        prometheus_process.wait(timeout=30)
        exporter.stop()
