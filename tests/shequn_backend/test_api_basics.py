"""Health, schema, docs, error shape for unknown paths and methods, size limits."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_healthz_reports_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_api_path_is_404_json(api_client):
    response = api_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_405_json(api_client):
    response = api_client.get("/api/v1/auth/login/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_oversized_body_is_400_json(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"username": "%s", "password": "x"}' % ("a" * 5000)
    response = api_client.post("/api/v1/auth/login/", body, content_type="application/json")
    assert response.status_code in (400, 413)
    assert "error" in response.json()


def test_schema_is_openapi_3_and_names_the_contract_paths(api_client):
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ["/api/v1/auth/register/", "/api/v1/auth/login/", "/api/v1/auth/wechat/", "/api/v1/me/"]:
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"


def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3")


def test_docs_page_serves(api_client):
    response = api_client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_admin_login_page_is_in_chinese_with_the_product_name(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "社群电商管理后台" in text
    assert "用户名" in text
