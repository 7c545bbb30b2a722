"""The OpenAPI document describes the commerce endpoints of the contract."""

import pytest

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
