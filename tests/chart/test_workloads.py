"""What the rendered chart promises about the workloads: scaling, security, selectors,
probes, shutdown timing, settings, secrets, pod busy marking, the annotator's job mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.chart.conftest import Rendered

FULLNAME = "gas"


def pod_specs(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    pods = [(d["metadata"]["name"], d["spec"]["template"]["spec"])
            for d in rendered.of_kind("Deployment")]
    pods += [(d["metadata"]["name"], d["spec"]["jobTargetRef"]["template"]["spec"])
             for d in rendered.of_kind("ScaledJob")]
    return pods


def config_of(rendered: Rendered, service: str) -> dict[str, str]:
    return rendered.get("ConfigMap", f"{FULLNAME}-{service}")["data"]


def is_job(service: dict[str, Any]) -> bool:
    return service.get("mode", "deployment") == "job"


def test_each_consumer_scales_on_its_own_queue(rendered: Rendered) -> None:
    merged = rendered.merged
    if not merged["keda"]["enabled"]:
        assert not rendered.of_kind("ScaledObject") and not rendered.of_kind("ScaledJob")
        return
    prefix = merged["config"]["namePrefix"]
    for name, service in rendered.worker_services().items():
        kind = "ScaledJob" if is_job(service) else "ScaledObject"
        scaler = rendered.get(kind, f"{FULLNAME}-{name}")
        if kind == "ScaledObject":
            assert scaler["spec"]["scaleTargetRef"]["name"] == f"{FULLNAME}-{name}"
            assert rendered.find("Deployment", f"{FULLNAME}-{name}")
        (trigger,) = scaler["spec"]["triggers"]
        assert trigger["type"] == "aws-sqs-queue"
        metadata = trigger["metadata"]
        queue = f"{prefix}-{service['queue']}"
        assert metadata["queueURL"].rsplit("/", 1)[-1] == queue
        if merged["aws"]["accountId"]:
            assert metadata["queueURL"] == (
                f"https://sqs.{merged['aws']['region']}.amazonaws.com/"
                f"{merged['aws']['accountId']}/{queue}")
        assert metadata["awsRegion"] == merged["aws"]["region"]
        # KEDA metadata values are strings, always.
        assert all(isinstance(v, str) for v in metadata.values()), metadata
        assert {"queueLength", "activationQueueLength"} <= set(metadata)
        auth = rendered.get("TriggerAuthentication", trigger["authenticationRef"]["name"])
        assert auth["spec"]["podIdentity"] == {"provider": "aws", "identityOwner": "workload"}
    # One scaler per consumer, no strays.
    scalers = rendered.of_kind("ScaledObject") + rendered.of_kind("ScaledJob")
    assert len(scalers) == len(rendered.worker_services())


def test_the_annotator_may_scale_to_zero(renders: dict[str, Rendered]) -> None:
    scaled = renders["defaults"].get("ScaledObject", f"{FULLNAME}-annotator")
    assert scaled["spec"]["minReplicaCount"] == 0
    assert scaled["spec"]["triggers"][0]["metadata"]["queueLength"] == "1"


def test_without_keda_workers_fall_back_to_a_cpu_hpa_with_at_least_one_replica(
    render_values: Callable[[dict[str, Any]], Rendered],
) -> None:
    rendered = render_values({"keda": {"enabled": False}})
    assert not rendered.of_kind("ScaledObject") and not rendered.of_kind("TriggerAuthentication")
    for name in rendered.worker_services():
        hpa = rendered.get("HorizontalPodAutoscaler", f"{FULLNAME}-{name}")
        assert hpa["spec"]["minReplicas"] >= 1
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"{FULLNAME}-{name}"
    # Autoscaled Deployments leave replicas to the autoscaler.
    assert all("replicas" not in d["spec"] for d in rendered.of_kind("Deployment"))


def test_job_mode_needs_keda(render_values: Callable[[dict[str, Any]], Rendered]) -> None:
    from tests.chart.conftest import helm

    with pytest.raises(helm.HelmError, match=r"needs keda\.enabled"):
        render_values({"keda": {"enabled": False}, "services": {"annotator": {"mode": "job"}}})


def test_every_pod_runs_as_non_root_with_a_read_only_root_filesystem(rendered: Rendered) -> None:
    pods = pod_specs(rendered)
    assert len(pods) == len(rendered.enabled_services())
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["runAsNonRoot"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp


def selectors(doc: dict[str, Any]) -> list[dict[str, str]]:
    spec = doc.get("spec", {})
    found = []
    if doc["kind"] in ("Deployment", "PodDisruptionBudget", "ServiceMonitor"):
        found.append(spec["selector"]["matchLabels"])
    if doc["kind"] == "Service":
        found.append(spec["selector"])
    if doc["kind"] == "NetworkPolicy":
        found.append(spec["podSelector"]["matchLabels"])
    for pod in [spec.get("template", {}).get("spec", {})]:
        for constraint in pod.get("topologySpreadConstraints", []):
            found.append(constraint["labelSelector"]["matchLabels"])
    return found


def test_no_selector_carries_the_chart_version(rendered: Rendered, chart: Any) -> None:
    version = chart.metadata["version"]
    all_selectors = [s for d in rendered.docs for s in selectors(d)]
    assert all_selectors
    for selector in all_selectors:
        assert "helm.sh/chart" not in selector
        assert "app.kubernetes.io/version" not in selector
        assert not any(version in value for value in selector.values()), selector
    # while every object carries the full label set
    for doc in rendered.docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"gas-{version}"


def test_probes_web_readiness_on_readyz_and_workers_on_their_health_port(
    rendered: Rendered,
) -> None:
    for name, service in rendered.enabled_services().items():
        deployment = rendered.find("Deployment", f"{FULLNAME}-{name}")
        if deployment is None:
            continue
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        port = "http" if service["kind"] == "web" else "metrics"
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == ({"http": service["port"], "metrics": 9100}
                         if service["kind"] == "web" else {"metrics": 9100})


def test_workers_drain_within_their_grace_period(rendered: Rendered) -> None:
    for name, service in rendered.worker_services().items():
        config = config_of(rendered, name)
        grace = next(p for n, p in pod_specs(rendered) if n == f"{FULLNAME}-{name}")[
            "terminationGracePeriodSeconds"]
        assert grace == service["terminationGracePeriodSeconds"]
        # The worker stops handling 15 s before SIGKILL, leaving time to release messages.
        assert float(config["GAS_WORKER_SHUTDOWN_GRACE_SECONDS"]) == grace - 15
    # The annotator's grace period is its own setting, above the other workers'.
    annotator = rendered.service("annotator")["terminationGracePeriodSeconds"]
    assert annotator >= 3600


def test_production_values_override_the_annotator_grace_period(
    renders: dict[str, Rendered],
) -> None:
    pod = renders["production-values"].get("Deployment", f"{FULLNAME}-annotator")
    assert pod["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 7200


def test_settings_come_from_a_configmap_whose_checksum_rolls_the_pods(
    renders: dict[str, Rendered], render_values: Callable[[dict[str, Any]], Rendered],
) -> None:
    base = renders["defaults"]
    changed = render_values({"services": {"notifier": {"env": {"GAS_LOG_LEVEL": "DEBUG"}}}})

    def checksum(rendered: Rendered, name: str) -> str:
        deployment = rendered.get("Deployment", f"{FULLNAME}-{name}")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(base, "notifier") != checksum(changed, "notifier")
    assert checksum(base, "archiver") == checksum(changed, "archiver")
    assert config_of(changed, "notifier")["GAS_LOG_LEVEL"] == "DEBUG"
    for name, pod in pod_specs(base):
        (container,) = pod["containers"]
        assert {"configMapRef": {"name": name}} in container["envFrom"]


def test_config_data_is_all_strings_and_names_the_deployment(rendered: Rendered) -> None:
    merged = rendered.merged
    for name in rendered.enabled_services():
        data = config_of(rendered, name)
        assert all(isinstance(v, str) for v in data.values())
        assert all(k.startswith("GAS_") for k in data)
        assert data["GAS_NAME_PREFIX"] == merged["config"]["namePrefix"]
        assert data["GAS_AWS_REGION"] == merged["aws"]["region"]
        for key, value in merged["config"]["extra"].items():
            assert data[key] == str(value)


def test_secrets_are_referenced_by_name_never_inlined(renders: dict[str, Rendered]) -> None:
    rendered = renders["production-values"]
    assert not rendered.of_kind("Secret")
    web = rendered.get("Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in web["containers"][0]["env"]}
    for key in ("GAS_SESSION_SECRET", "GAS_GLOBUS_CLIENT_SECRET"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "gas-prod-secrets", "key": key}
    # Workers get no secrets they do not list.
    notifier = rendered.get("Deployment", f"{FULLNAME}-notifier")["spec"]["template"]["spec"]
    assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"]
                   for e in notifier["containers"][0]["env"])


def test_every_service_account_carries_its_irsa_role(renders: dict[str, Rendered]) -> None:
    rendered = renders["production-values"]
    for name in rendered.enabled_services():
        account = rendered.get("ServiceAccount", f"{FULLNAME}-{name}")
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
            f"arn:aws:iam::123456789012:role/gas-prod-{name}")


def test_annotator_pods_mark_themselves_busy_with_the_least_rbac_possible(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["defaults"]
    role = rendered.get("Role", f"{FULLNAME}-annotator-pod-deletion-cost")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]
    binding = rendered.get("RoleBinding", f"{FULLNAME}-annotator-pod-deletion-cost")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{FULLNAME}-annotator", "namespace": "gas"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    for name, pod in pod_specs(rendered):
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        marks = name == f"{FULLNAME}-annotator"
        # Only the marking pods get an API token and their own name from the downward API.
        assert pod["automountServiceAccountToken"] is marks, name
        assert ("GAS_POD_NAME" in env) is marks
        if marks:
            assert env["GAS_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            assert env["GAS_POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
                "metadata.namespace")
    assert len(rendered.of_kind("Role")) == 1


def test_job_mode_runs_one_message_per_job_pod(renders: dict[str, Rendered]) -> None:
    rendered = renders["annotator-job-values"]
    assert rendered.find("Deployment", f"{FULLNAME}-annotator") is None
    assert rendered.find("PodDisruptionBudget", f"{FULLNAME}-annotator") is None
    # Jobs are never scaled in, so no pod marking (and no API access) is needed.
    assert rendered.find("Role", f"{FULLNAME}-annotator-pod-deletion-cost") is None
    job = rendered.get("ScaledJob", f"{FULLNAME}-annotator")
    target = job["spec"]["jobTargetRef"]
    assert target["backoffLimit"] == 0 and target["parallelism"] == 1
    assert target["activeDeadlineSeconds"] == 86400
    assert target["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["scalingStrategy"] == {"strategy": "accurate"}
    assert job["spec"]["triggers"][0]["metadata"]["scaleOnInFlight"] == "false"
    config = config_of(rendered, "annotator")
    assert config["GAS_WORKER_MAX_MESSAGES"] == "1"
    assert config["GAS_WORKER_EXIT_WHEN_IDLE"] == "true"
    assert config["GAS_WORKER_CONCURRENCY"] == "1"
    # The other workers stay Deployments
    assert rendered.find("ScaledObject", f"{FULLNAME}-archiver")


def test_the_annotator_pulls_and_verifies_its_reference_bundle_before_starting(
    renders: dict[str, Rendered],
) -> None:
    for value_set, volume in (("defaults", "emptyDir"), ("annotator-job-values", "pvc")):
        rendered = renders[value_set]
        pod = next(p for n, p in pod_specs(rendered) if n == f"{FULLNAME}-annotator")
        (init,) = pod["initContainers"]
        env = {e["name"]: e.get("value") for e in init["env"]}
        assert env["GAS_ANNOTATOR_REFERENCE_URI"] == "s3://gas-results/references/GRCh38/115/"
        assert env["GAS_ANNOTATOR_REFERENCE_CACHE_DIR"] == "/reference"
        assert "pull_bundle" in init["command"][-1]
        assert init["image"] == pod["containers"][0]["image"]
        (reference,) = [v for v in pod["volumes"] if v["name"] == "reference"]
        assert volume in {"emptyDir": "emptyDir", "persistentVolumeClaim": "pvc"}.get(
            next(k for k in reference if k != "name"), "")
        main_mount = next(m for m in pod["containers"][0]["volumeMounts"]
                          if m["name"] == "reference")
        assert main_mount["readOnly"] is True
        assert config_of(rendered, "annotator")["GAS_REFERENCE_DIR"] == "/reference"


def test_the_init_container_snippet_is_valid_python_against_the_annotator_api() -> None:
    import ast
    import importlib

    from tests.chart.conftest import CHART_DIR

    text = (CHART_DIR / "templates" / "_pod.tpl").read_text()
    start = text.index("- |\n", text.index("fetch-reference")) + 4
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith(" " * 10):
            break
        lines.append(line[10:])
    tree = ast.parse("\n".join(lines))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_web_is_exposed_by_service_ingress_and_cpu_hpa(renders: dict[str, Rendered]) -> None:
    rendered = renders["production-values"]
    service = rendered.get("Service", f"{FULLNAME}-web")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    ingress = rendered.get("Ingress", f"{FULLNAME}-web")
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["spec"]["rules"][0]["host"] == "gas.genomics.example.org"
    assert "alb.ingress.kubernetes.io/certificate-arn" in ingress["metadata"]["annotations"]
    hpa = rendered.get("HorizontalPodAutoscaler", f"{FULLNAME}-web")
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    nginx = renders["annotator-job-values"].get("Ingress", f"{FULLNAME}-web")
    assert nginx["spec"]["tls"] == [{"hosts": ["gas.lab.example.org"],
                                     "secretName": "gas-web-tls"}]
    web = rendered.get("Deployment", f"{FULLNAME}-web")
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_every_deployment_has_a_disruption_budget(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        pdb = rendered.get("PodDisruptionBudget", deployment["metadata"]["name"])
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_network_policies_admit_only_the_ingress_controller_and_prometheus(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["defaults"]
    merged = rendered.merged["networkPolicy"]
    for name, service in rendered.enabled_services().items():
        policy = rendered.get("NetworkPolicy", f"{FULLNAME}-{name}")
        *web_rules, rule = policy["spec"]["ingress"]
        # Every service: the metrics port, and only for metricsFrom (Prometheus).
        assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        assert rule["from"] == merged["metricsFrom"]
        if service["kind"] == "web":
            (web_rule,) = web_rules
            assert web_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
            assert web_rule["from"] == merged["webFrom"] + merged["metricsFrom"]
        else:
            assert not web_rules
    assert not renders["minimal-values"].of_kind("NetworkPolicy")
