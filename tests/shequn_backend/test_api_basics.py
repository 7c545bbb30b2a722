"""Health, schema, docs, error shape for unknown paths and methods, size limits."""

import re

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

from shequn_backend.api.exceptions import _flatten, field_key
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accept", ["*/*", "text/plain", "application/xml"])
def test_healthz_reports_ok_when_the_database_answers(client, accept):
    response = client.get("/healthz", HTTP_ACCEPT=accept)
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


def page_assets(html: str) -> list[str]:
    """Every script, stylesheet and icon address the page loads."""
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/api/v1/docs/"])
@pytest.mark.parametrize("debug", [True, False])
def test_the_docs_page_loads_only_our_own_static_files_which_exist_and_are_served(
    api_client, settings, page, debug
):
    settings.DEBUG = debug
    response = api_client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html), "no CDN: the page must work offline"
    assets = page_assets(html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets)
    for url in assets:
        assert url.startswith("/static/"), url
        path = url.split("/static/", 1)[1]
        assert finders.find(path), f"{path} is not among the static files"
        served = api_client.get(url)
        assert served.status_code == 200, url
        assert b"".join(served.streaming_content if served.streaming else [served.content])


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("caller", ["anonymous", "member"])
def test_the_api_root_answers_json_with_links(api_client, user, settings, debug, caller):
    settings.DEBUG = debug
    client = client_for(user) if caller == "member" else api_client

    response = client.get("/api/v1/")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["name"] and body["version"] == django_settings.SPECTACULAR_SETTINGS["VERSION"]
    links = body["links"]
    assert {"docs", "schema", "health", "communities", "orders", "me"} <= set(links)
    assert (
        links["docs"] == "http://testserver/api/v1/docs/" and links["health"] == "http://testserver/healthz"
    )
    assert client.get(links["communities"]).status_code == 200
    assert api_client.get(links["health"]).json() == {"status": "ok"}


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("caller", ["anonymous", "member"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/no-such-thing/"),
        ("get", "/api/v2/"),
        ("get", "/api/"),
        ("post", "/api/v1/orders/abc/cancel/"),
        ("post", "/api/v1/communities/p%C3%B0/join/"),  # not a slug: no route matches
        ("get", "/api/v1/orders"),  # no trailing slash
        ("delete", "/api/v1/nothing/here"),
    ],
)
def test_unknown_api_paths_answer_the_contracts_json_404(
    api_client, user, settings, debug, caller, method, path
):
    settings.DEBUG = debug
    client = client_for(user) if caller == "member" else api_client

    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "未找到。"}}


def test_unknown_paths_outside_the_api_keep_djangos_page(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")


def test_admin_login_page_is_in_chinese_with_the_product_name(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "社群电商管理后台" in text
    assert "用户名" in text


@pytest.mark.parametrize("page_size", ["x", "0", "-5", "", "1.5", " 2"])
def test_a_page_size_that_is_not_a_whole_number_from_1_is_refused(api_client, page_size):
    response = api_client.get("/api/v1/communities/", {"page_size": page_size})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["page_size"]


@pytest.mark.parametrize(("page_size", "status"), [("1", 200), ("007", 200), (str(10**30), 200)])
def test_whole_page_sizes_are_served_and_large_ones_capped(api_client, page_size, status):
    assert api_client.get("/api/v1/communities/", {"page_size": page_size}).status_code == status


@pytest.mark.parametrize("page", ["abc", "", "0", "-1", "1.0"])
def test_a_page_that_is_not_a_whole_number_from_1_is_not_found(api_client, page):
    response = api_client.get("/api/v1/communities/", {"page": page})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("interests", [[0], [True], [None], [["跑步"]]])
def test_tags_must_be_strings_not_numbers_converted(user_client, interests):
    response = user_client.patch("/api/v1/me/", {"interests": interests}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["interests[0]"]


def test_fields_keys_have_one_form_whatever_the_nesting_or_whoever_raised_them():
    detail = {
        "lines": {0: {"quantity": ["a"]}, 2: {"sku": ["b"]}},  # a ListField of serializers
        "plans": [{}, {"price": ["c"]}],  # a many=True serializer
        "referral": {"level1_percent": ["d"]},
        "tags": {1: ["e"]},  # a ListField of strings
    }
    assert _flatten(detail) == {
        "lines[0].quantity": ["a"],
        "lines[2].sku": ["b"],
        "plans[1].price": ["c"],
        "referral.level1_percent": ["d"],
        "tags[1]": ["e"],
    }
    assert [field_key(k) for k in ("skus.0.price", "lines.12.sku", "a.1", "Idempotency-Key")] == [
        "skus[0].price",
        "lines[12].sku",
        "a[1]",
        "Idempotency-Key",
    ]
