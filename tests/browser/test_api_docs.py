"""The interactive API page renders with the network off: every file it needs is ours."""

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_page_renders_its_operations_offline(page, live_server, shoot):
    ours = urlsplit(live_server.url).netloc
    elsewhere = []

    def offline(route):
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:  # the network is off: anything not ours fails
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto("/api/v1/docs/")

    page.wait_for_selector(".swagger-ui .opblock", state="attached")
    assert page.locator(".swagger-ui .opblock").count() >= 30
    assert page.get_by_text("/api/v1/orders/", exact=True).first.is_visible()
    assert elsewhere == []
    shoot("api-docs-offline")
