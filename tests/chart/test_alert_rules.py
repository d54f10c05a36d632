"""The chart's alerts through Prometheus's own tool: the rendered PrometheusRule's groups pass
`promtool check rules`, and `promtool test rules` runs tests/chart/alerts_test.yaml, where every
alert has a case in which it fires and one in which it stays silent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import Rendered
from tests.support import require_or_skip

ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")


def promtool() -> str:
    path = shutil.which("promtool")
    require_or_skip(path is not None,
                    "promtool is not installed (Debian: apt-get install prometheus)")
    assert path is not None
    return path


def write_rules(rendered: Rendered, directory: Path) -> Path | None:
    """The rule groups of the rendered PrometheusRule, as a Prometheus rule file."""
    rules = rendered.of_kind("PrometheusRule")
    if not rules:
        return None
    (rule,) = rules
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def alerts_of(rendered: Rendered) -> set[str]:
    (rule,) = rendered.of_kind("PrometheusRule")
    return {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}


def test_rendered_rules_pass_promtool_check(rendered: Rendered, tmp_path: Path) -> None:
    tool = promtool()
    path = write_rules(rendered, tmp_path)
    if path is None:
        assert not rendered.merged["monitoring"]["prometheusRule"]["enabled"]
        return
    result = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts_of(rendered))} rules found" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_promtool_case(
    renders: dict[str, Rendered],
) -> None:
    cases: list[dict[str, Any]] = [
        case for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    silent = {c["alertname"] for c in cases if not c["exp_alerts"]}
    alerts = alerts_of(renders["defaults"])
    assert alerts - fires == set(), "alerts without a case where they fire"
    assert alerts - silent == set(), "alerts without a case where they stay silent"
    assert (fires | silent) - alerts == set(), "cases for alerts the chart no longer has"


def test_alerts_fire_when_they_should_and_stay_silent_otherwise(
    renders: dict[str, Rendered], tmp_path: Path,
) -> None:
    tool = promtool()
    assert write_rules(renders["defaults"], tmp_path) is not None
    tests = tmp_path / ALERT_TESTS.name
    shutil.copy(ALERT_TESTS, tests)
    result = subprocess.run([tool, "test", "rules", str(tests)], capture_output=True, text=True,
                            timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("broken", ["rate(", "sum by (le (x)"])
def test_promtool_check_catches_a_broken_expression(broken: str, tmp_path: Path) -> None:
    """The check above can fail: a rule file with an unparsable expression is rejected."""
    tool = promtool()
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [
        {"name": "broken", "rules": [{"alert": "Broken", "expr": broken}]}]}))
    result = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0
