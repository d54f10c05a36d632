"""The OpenAPI document describes the API as it behaves: problem+json errors, bearer auth as a
security scheme, readable operation ids."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.services.web.conftest import bearer

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method in METHODS]


def test_every_error_response_is_problem_json_with_the_problem_schema(
        spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert {"title", "status", "detail", "instance"} <= set(problem["required"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    errors = 0
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}, (path, method, status)
        assert "500" in operation["responses"], (path, method)
    assert errors > 0


def test_declared_error_statuses_match_what_the_dependencies_raise(
        spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    assert {"401", "404", "409"} <= set(paths["/api/v1/jobs/{job_id}/results/{kind}"]["get"]
                                        ["responses"])
    assert {"401", "403", "404", "413", "422"} <= set(
        paths["/api/v1/jobs/{job_id}/submit"]["post"]["responses"])
    assert {"400", "404", "409"} <= set(paths["/api/v1/jobs/{job_id}/variants/export"]["get"]
                                        ["responses"])
    assert "404" not in paths["/api/v1/me"]["get"]["responses"]
    assert "401" not in paths["/api/v1/auth"]["get"]["responses"]  # public discovery


def test_bearer_auth_is_a_security_scheme_not_a_header_parameter(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearer"]["type"] == "http"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, method, operation in operations(spec):
        names = {p["name"].lower() for p in operation.get("parameters", [])}
        assert "authorization" not in names, (path, method)
        expected: list[dict[str, list[str]]] = [] if path == "/api/v1/auth" else [{"bearer": []}]
        assert operation.get("security", []) == expected, (path, method)


def test_operation_ids_are_the_route_names(spec: dict[str, Any]) -> None:
    assert {operation["operationId"] for _, _, operation in operations(spec)} == {
        "auth_config", "read_me", "set_tier", "create_job_upload", "submit", "list_jobs",
        "read_job", "download_result", "list_variants", "list_saved_filters", "save_filter",
        "read_saved_filter", "delete_saved_filter", "read_variant_fields", "variant_summary",
        "export_variants", "read_variant", "list_presets"}


def test_the_bearer_scheme_still_accepts_a_dev_token_and_refuses_other_schemes(
        client: TestClient, user_id: str) -> None:
    assert client.get("/api/v1/me", headers=bearer(user_id)).status_code == 200
    refused = client.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Send `Authorization: Bearer <token>`."
