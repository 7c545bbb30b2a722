"""The OpenAPI document describes the commerce endpoints of the contract."""

import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.api.serializers import SkuInput
from members.api.serializers import PlanInput, ReferralInput

pytestmark = pytest.mark.django_db


def test_the_schema_lists_every_commerce_endpoint(api_client):
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"] if response.get("Content-Type", "").endswith("json") else None
    text = response.content.decode()
    for path in (
        "/api/v1/communities/{slug}/products/",
        "/api/v1/communities/{slug}/products/{product_id}/",
        "/api/v1/orders/",
        "/api/v1/orders/{order_id}/",
        "/api/v1/orders/{order_id}/cancel/",
        "/api/v1/owner/communities/{slug}/products/",
        "/api/v1/owner/orders/{order_id}/refund/",
        "/api/v1/payments/stripe/webhook/",
    ):
        assert path in (paths or text)


# --- What every operation can answer, and money --------------------------------------------------

IDEMPOTENT_WRITES = [
    ("post", "/api/v1/orders/"),
    ("post", "/api/v1/communities/{slug}/join/"),
    ("post", "/api/v1/orders/{order_id}/refund/"),
    ("post", "/api/v1/owner/orders/{order_id}/refund/"),
]


@pytest.fixture
def schema(api_client) -> dict:
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def ref_name(response: dict) -> str:
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]


def test_every_error_answer_has_the_contracts_error_shape_and_a_description(schema):
    shape = schema["components"]["schemas"]["ErrorResponse"]["properties"]["error"]["$ref"]
    assert shape.endswith("/ErrorDetail")
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) >= 400 and path != "/healthz":
                assert ref_name(response) == "ErrorResponse", (method, path, status)
                assert response["description"], (method, path, status)


def test_the_statuses_the_plumbing_can_answer_are_documented_everywhere(schema):
    for method, path, operation in operations(schema):
        statuses = set(operation["responses"])
        assert "400" in statuses, (method, path)  # NUL bytes, bad JSON, invalid fields
        if operation.get("security") and {} not in operation["security"]:
            assert "401" in statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)
        if "requestBody" in operation and path != "/api/v1/payments/stripe/webhook/":
            assert {"413", "415"} <= statuses, (method, path)
    login = schema["paths"]["/api/v1/auth/login/"]["post"]["responses"]
    assert "429" in login and "401" not in login


@pytest.mark.parametrize(("method", "path"), IDEMPOTENT_WRITES)
def test_writes_that_move_money_document_the_idempotency_key_and_the_providers_failures(schema, method, path):
    operation = schema["paths"][path][method]
    [header] = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
    assert not header.get("required") and header["schema"] == {"type": "string", "maxLength": 100}
    assert {"201", "409", "502", "503"} <= set(operation["responses"])
    assert "200" not in operation["responses"]  # a replay answers as the first request did: 201


def test_health_and_the_api_root_are_in_the_schema(schema):
    health = schema["paths"]["/healthz"]["get"]
    assert {"200", "503"} <= set(health["responses"]) and health.get("security") in ([], [{}], None)
    assert "200" in schema["paths"]["/api/v1/"]["get"]["responses"]


def test_money_has_a_pattern_in_and_out_and_a_patched_slug_is_documented_as_refused(schema):
    components = schema["components"]["schemas"]
    sku_price = components["SkuInputRequest"]["properties"]["price"]
    assert sku_price["type"] == "string" and sku_price["pattern"] == r"^\d{1,7}(?:\.\d{1,2})?$"
    assert re.fullmatch(components["OrderOutput"]["properties"]["total"]["pattern"], "12.30")
    refund_amount = components["RefundInputRequest"]["properties"]["amount"]
    assert refund_amount["nullable"] is True and refund_amount["pattern"]
    assert components["PatchedCommunityUpdateInputRequest"]["properties"]["slug"]["not"] == {}
    assert "category" in components["ProductInputRequest"]["required"]
    category = components["ProductInputRequest"]["properties"]["category"]
    [ref] = [part["$ref"] for part in category["allOf"]]
    assert "运动户外/跑步装备" in components[ref.rsplit("/", 1)[1]]["enum"]


@pytest.mark.parametrize(
    ("serializer", "field", "maximum"),
    [
        (SkuInput, "price", "9999999.99"),
        (PlanInput, "price", "1000000"),
        (ReferralInput, "level1_percent", "50"),
    ],
)
@given(
    value=st.one_of(
        st.from_regex(r"\A-?[0-9]{0,9}(\.[0-9]{0,3})?\Z"), st.text("0123456789.e-+ ", max_size=12)
    )
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_money_inputs_accept_exactly_what_their_pattern_says(serializer, field, maximum, value):
    pattern = serializer().fields[field].pattern
    errors = serializer(data={field: value}, partial=True)
    errors.is_valid()
    accepted = field not in errors.errors
    assert accepted == bool(re.fullmatch(pattern, value)), (value, pattern, errors.errors)
    if accepted:
        assert Decimal("0") <= Decimal(value) <= Decimal(maximum)
