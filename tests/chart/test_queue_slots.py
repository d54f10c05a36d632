"""The web is told how many annotation jobs run at once at full scale (GAS_ANNOTATOR_SLOTS),
which a PENDING job's estimated start is computed with (gas_core.jobs.queue)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.chart.conftest import Rendered


def slots(rendered: Rendered) -> str:
    value: str = rendered.get("ConfigMap", "gas-web")["data"]["GAS_ANNOTATOR_SLOTS"]
    return value


def test_the_web_knows_the_annotators_full_scale(
    render_values: Callable[[dict[str, Any]], Rendered],
) -> None:
    assert slots(render_values({})) == "10"  # maxReplicas 10, one job per pod
    two_per_pod = {"services": {"annotator": {
        "autoscaling": {"maxReplicas": 4}, "env": {"GAS_WORKER_CONCURRENCY": "2"}}}}
    assert slots(render_values(two_per_pod)) == "8"
    fixed = {"services": {"annotator": {"autoscaling": {"enabled": False}, "replicas": 3}}}
    assert slots(render_values(fixed)) == "3"
    jobs = {"services": {"annotator": {"mode": "job", "autoscaling": {"maxReplicas": 6},
                                       "env": {"GAS_WORKER_CONCURRENCY": "2"}}}}
    assert slots(render_values(jobs)) == "6"  # a Job pod runs one job
