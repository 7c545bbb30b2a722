"""The admin's middleware (sessions, logins, messages) serve browsers; API requests skip them."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from shequn_backend.middleware import AuthenticationMiddleware, MessageMiddleware, SessionMiddleware


def seen_by_the_view(path: str) -> dict:
    """What the view finds on a request to ``path`` after the three middleware, in settings' order."""
    seen = {}

    def view(request):
        seen.update(
            session=hasattr(request, "session"),
            user=hasattr(request, "user"),
            messages=hasattr(request, "_messages"),
        )
        return HttpResponse()

    chain = SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(view)))
    chain(RequestFactory().get(path))
    return seen


@pytest.mark.parametrize("path", ["/api/v1/orders/", "/api/v1/communities/x/products/"])
def test_api_requests_skip_sessions_logins_and_messages(path):
    assert seen_by_the_view(path) == {"session": False, "user": False, "messages": False}


@pytest.mark.parametrize("path", ["/admin/", "/admin/commerce/order/", "/healthz"])
def test_every_other_request_gets_them(path):
    assert seen_by_the_view(path) == {"session": True, "user": True, "messages": True}
