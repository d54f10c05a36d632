"""The chart renders and lints with real Helm, its schema refuses unknown keys, and every object
it renders is valid against the Kubernetes schemas (core kinds) or its CRD's (KEDA, Prometheus
Operator), strictly: unknown fields are errors."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from referencing import Registry, Resource

from tests.chart.conftest import CHART_DIR, VALUE_FILES, CrdSchemas, Rendered, helm, load_values

# The oldest Kubernetes minor the chart is validated for (EKS standard support).
KUBE_VERSION = "1.30.0"
CRD_GROUPS = ("keda.sh/", "monitoring.coreos.com/")


@pytest.mark.parametrize("value_set", list(VALUE_FILES))
def test_helm_lint_strict_is_clean_for_every_value_set(value_set: str) -> None:
    report = helm.lint(str(CHART_DIR), load_values(VALUE_FILES[value_set]), strict=True,
                       namespace="gas", kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


def test_every_value_set_renders_the_objects_it_enables(rendered: Rendered) -> None:
    kinds = {d["kind"] for d in rendered.docs}
    assert {"ConfigMap", "ServiceAccount", "Service"} <= kinds
    # No object is rendered twice (a name clash would be a silent overwrite in the cluster).
    keys = [(d["kind"], d["metadata"]["name"]) for d in rendered.docs]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "typo",
    [
        {"kedaa": {"enabled": True}},
        {"services": {"annotator": {"terminationGracePeriodSecond": 120}}},
        {"defaults": {"autoscaling": {"minReplica": 0}}},
        {"services": {"web": {"ingress": {"hosts": ["gas.example.org"]}}}},
        {"services": {"annotatr": {"kind": "worker", "queue": "annotator"}}},
    ],
    ids=["top-level", "service", "defaults", "ingress", "service-name"],
)
def test_the_values_schema_rejects_a_mistyped_key(chart: Any, typo: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError) as raised:
        chart.render(typo, name="gas", namespace="gas")
    assert "additional properties" in str(raised.value).lower() or "additionalProperties" in str(
        raised.value)


def test_the_values_schema_rejects_a_wrong_type_and_a_bad_enum(chart: Any) -> None:
    for bad in ({"services": {"annotator": {"mode": "cron"}}},
                {"aws": {"accountId": 123456789012}},
                {"config": {"namePrefix": "GAS_Prod"}}):
        with pytest.raises(helm.HelmError):
            chart.render(bad, name="gas", namespace="gas")


@functools.cache
def core_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    """kubernetes-validate's strict schema for a kind, loaded once (the library reloads the
    multi-megabyte definitions on every call)."""
    version = kubernetes_validate.utils.major_minor(KUBE_VERSION)
    schema_dir = f"kubernetes-json-schema/v{version}.0-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kubernetes_validate.utils.schema_contents(
        f"{schema_dir}/{kind.lower()}-{group}.json", version)
    definitions = kubernetes_validate.utils.schema_contents(
        f"{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_core_objects_are_valid_kubernetes_objects_with_no_unknown_fields(
    rendered: Rendered,
) -> None:
    core = [d for d in rendered.docs if not d["apiVersion"].startswith(CRD_GROUPS)]
    assert core
    for doc in core:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in core_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc)]
        assert not errors, f"{doc['kind']} {doc['metadata']['name']}: {errors}"


def test_the_cached_validator_agrees_with_kubernetes_validate(renders: dict[str, Rendered]) -> None:
    for doc in renders["defaults"].docs[:3]:
        if not doc["apiVersion"].startswith(CRD_GROUPS):
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def validate_crd_object(schemas: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    schema = schemas[f"{doc['apiVersion']}/{doc['kind']}"]
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def test_keda_and_prometheus_operator_objects_match_their_crd_schemas(
    rendered: Rendered, crd_schemas: CrdSchemas
) -> None:
    schemas = crd_schemas.get()
    for doc in rendered.docs:
        if doc["apiVersion"].startswith(CRD_GROUPS):
            errors = validate_crd_object(schemas, doc)
            assert not errors, f"{doc['kind']} {doc['metadata']['name']}: {errors}"


def test_the_crd_check_itself_rejects_unknown_fields(
    renders: dict[str, Rendered], crd_schemas: CrdSchemas
) -> None:
    schemas = crd_schemas.get()
    scaled = copy.deepcopy(renders["defaults"].of_kind("ScaledObject")[0])
    scaled["spec"]["triggers"][0]["authRef"] = {"name": "x"}
    assert validate_crd_object(schemas, scaled)
    monitor = copy.deepcopy(renders["defaults"].of_kind("ServiceMonitor")[0])
    monitor["spec"]["endpoints"][0]["scrapeEvery"] = "30s"
    assert validate_crd_object(schemas, monitor)


def test_a_kubernetes_object_with_an_unknown_field_fails_strict_validation(
    renders: dict[str, Rendered],
) -> None:
    deployment = copy.deepcopy(renders["defaults"].of_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    assert list(core_validator("apps/v1", "Deployment").iter_errors(deployment))
