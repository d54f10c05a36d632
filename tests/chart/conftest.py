"""Chart fixtures: the chart rendered once per value set (defaults and every ci/*.yaml) with
real Helm (helm-python-sdk, the Helm v4 SDK in-process), and the CRD schemas of KEDA and the
Prometheus Operator built in a background process while other tests run."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO_ROOT

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")

CHART_DIR = REPO_ROOT / "charts" / "gas"
RELEASE = "gas"
NAMESPACE = "gas"
# Value sets every test sees: the chart's defaults, then each CI value file.
VALUE_FILES: dict[str, Path | None] = {
    "defaults": None,
    **{path.stem: path for path in sorted((CHART_DIR / "ci").glob("*.yaml"))},
    # The values CI/CD deploys with (.github/workflows/deploy.yaml).
    **{f"env-{path.stem}": path for path in sorted((CHART_DIR / "env").glob("*.yaml"))},
}


@dataclass
class Rendered:
    name: str
    values: dict[str, Any]
    # The chart's values.yaml merged with `values`, as the templates saw them.
    merged: dict[str, Any]
    manifests: dict[str, str]
    docs: list[dict[str, Any]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert matches, f"no {kind} {name} in {self.name}"
        return matches[0]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        matches = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        return matches[0] if matches else None

    def service(self, name: str) -> dict[str, Any]:
        """A service's values merged over `defaults`, as templates/services.yaml does."""
        return deep_merge(self.merged["defaults"], self.merged["services"][name])

    def enabled_services(self) -> dict[str, dict[str, Any]]:
        return {n: self.service(n) for n, s in self.merged["services"].items() if s.get("enabled")}

    def worker_services(self) -> dict[str, dict[str, Any]]:
        return {n: s for n, s in self.enabled_services().items() if s["kind"] == "worker"}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values(path: Path | None) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text()) or {}) if path else {}


def render(chart: Any, name: str, values: dict[str, Any]) -> Rendered:
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    docs = [
        doc
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return Rendered(name, values, chart.merge_values(values), manifests, docs)


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    loaded = helm.Chart.load(str(CHART_DIR))
    yield loaded
    loaded.close()


@pytest.fixture(scope="session")
def renders(chart: Any) -> dict[str, Rendered]:
    return {name: render(chart, name, load_values(path)) for name, path in VALUE_FILES.items()}


@pytest.fixture(scope="session", params=list(VALUE_FILES))
def rendered(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    return renders[request.param]


@pytest.fixture(scope="session")
def render_values(chart: Any) -> Any:
    """Render arbitrary values (for tests of one switch)."""
    return lambda values: render(chart, "custom", values)


class CrdSchemas:
    def __init__(self, tmp: Path) -> None:
        self._out = tmp / "crd-schemas.json"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.chart.crd_schemas", str(self._out)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._schemas: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self._schemas is None:
            output, _ = self._process.communicate(timeout=300)
            assert self._process.returncode == 0, output.decode()
            self._schemas = json.loads(self._out.read_text())
        return self._schemas

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="session", autouse=True)
def crd_schemas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrdSchemas]:
    """Started with the first chart test, so the slow model import overlaps the others."""
    schemas = CrdSchemas(tmp_path_factory.mktemp("crd"))
    yield schemas
    schemas.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the CRD checks last, so the schema process has had the other tests' time."""
    def waits_for_crds(item: pytest.Item) -> bool:
        function = getattr(item, "function", None)
        return (item.nodeid.startswith("tests/chart/") and function is not None
                and "crd_schemas" in inspect.signature(function).parameters)

    items.sort(key=waits_for_crds)  # stable: everything else keeps its order
