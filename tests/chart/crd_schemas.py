"""JSON schemas of the KEDA and Prometheus Operator kinds the chart creates, from registry models.

`cloudcoil-models-keda` / `cloudcoil-models-prometheus-operator` are generated from the
projects' CRDs. Their pydantic models ignore unknown fields, so the schemas are tightened:
every object with declared properties gets `additionalProperties: false`, making unknown fields
errors as the API server's structural schema pruning would silently drop them.

Importing the models takes ~15 s of CPU, so the chart tests run this module in a subprocess
that works while the other chart tests run: `python -m tests.chart.crd_schemas OUT.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _close(node: Any) -> None:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def schemas() -> dict[str, dict[str, Any]]:
    from cloudcoil.models.keda import v1alpha1 as keda
    from cloudcoil.models.prometheus_operator import v1 as monitoring

    kinds = {
        "keda.sh/v1alpha1/ScaledObject": keda.ScaledObject,
        "keda.sh/v1alpha1/ScaledJob": keda.ScaledJob,
        "keda.sh/v1alpha1/TriggerAuthentication": keda.TriggerAuthentication,
        "monitoring.coreos.com/v1/ServiceMonitor": monitoring.ServiceMonitor,
        "monitoring.coreos.com/v1/PrometheusRule": monitoring.PrometheusRule,
    }
    result = {}
    for key, model in kinds.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        _close(schema)
        result[key] = schema
    return result


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(schemas()))
