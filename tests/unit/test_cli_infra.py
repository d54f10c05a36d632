"""`gas infra apply | plan | policy` as an operator runs them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gas_cli.infra import Infrastructure
from gas_cli.main import cli
from gas_cli.policies import ACCESS, policy_document
from gas_core.settings import GasSettings


@pytest.fixture
def env(fresh_settings: GasSettings) -> dict[str, str]:
    return {
        "GAS_AWS_ENDPOINT_URL": fresh_settings.aws_endpoint_url or "",
        "GAS_AWS_ACCESS_KEY_ID": "testing",
        "GAS_AWS_SECRET_ACCESS_KEY": "testing",
        "GAS_NAME_PREFIX": fresh_settings.name_prefix,
    }


def test_apply_then_apply_again_says_nothing_changed(env: dict[str, str]) -> None:
    runner = CliRunner()
    planned = runner.invoke(cli, ["infra", "plan"], env=env)
    assert planned.exit_code == 0, planned.output
    assert "+ create table" in planned.output
    first = runner.invoke(cli, ["infra", "apply"], env=env)
    assert first.exit_code == 0, first.output
    assert "changes applied" in first.output
    second = runner.invoke(cli, ["infra", "apply"], env=env)
    assert second.exit_code == 0
    assert second.output.strip() == "No changes: up to date."


def test_policy_prints_least_privilege_json_for_each_service(env: dict[str, str]) -> None:
    runner = CliRunner()
    for service in ACCESS:
        result = runner.invoke(cli, ["infra", "policy", service, "--account-id", "111122223333"],
                               env=env)
        assert result.exit_code == 0, result.output
        document = json.loads(result.output)
        resources = [r for s in document["Statement"] for r in s["Resource"]]
        # Every resource is this deployment's (no wildcards over other accounts' or prefixes'),
        # except SES, which is scoped by a condition on the sender instead.
        prefix = env["GAS_NAME_PREFIX"]
        for resource in resources:
            assert resource == "*" or prefix in resource, (service, resource)
        assert all("111122223333" in r for r in resources if r.startswith("arn:aws:sqs"))


def test_each_consumer_may_consume_only_its_own_queue(fresh_settings: GasSettings) -> None:
    infra = Infrastructure(fresh_settings)
    infra._account = "111122223333"
    for service, access in ACCESS.items():
        document = policy_document(service, infra)
        consumed = [s["Resource"] for s in document["Statement"] if s["Sid"] == "ConsumeOwnQueue"]
        if access.consumes is None:
            assert consumed == []
        else:
            assert consumed == [[infra.queue_arn(fresh_settings.names.queue(access.consumes))]]
        actions = {a for s in document["Statement"] for a in s["Action"]}
        assert not any(a.endswith(":*") for a in actions), service
        assert "s3:DeleteObject" not in actions or service in ("archiver", "thawer", "web")
        assert ("dynamodb:DeleteItem" in actions) == (service == "notifier")


def _object_actions(service: str, infra: Infrastructure, bucket_name: str) -> set[str]:
    document = policy_document(service, infra)
    return {a for s in document["Statement"] for a in s["Action"]
            if any(bucket_name in r for r in s["Resource"]) and a.startswith("s3:")}


def test_the_web_may_delete_the_uploads_it_refuses_but_no_result(
    fresh_settings: GasSettings,
) -> None:
    infra = Infrastructure(fresh_settings)
    infra._account = "111122223333"
    assert "s3:DeleteObject" in _object_actions("web", infra, fresh_settings.names.inputs_bucket)
    assert "s3:DeleteObject" not in _object_actions(
        "web", infra, fresh_settings.names.results_bucket)


def test_the_readers_of_a_versioned_input_may_read_its_recorded_version(
    fresh_settings: GasSettings,
) -> None:
    # Submit and the annotator read the input with VersionId, which S3 authorizes as
    # s3:GetObjectVersion, not s3:GetObject.
    infra = Infrastructure(fresh_settings)
    infra._account = "111122223333"
    for service in ("web", "annotator"):
        actions = _object_actions(service, infra, fresh_settings.names.inputs_bucket)
        assert "s3:GetObjectVersion" in actions, service
