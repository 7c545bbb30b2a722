"""The admin's middleware (sessions, logins, messages) serve browsers; API requests skip them."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from shequn_backend.api import is_api_request
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


@pytest.mark.parametrize(
    ("path", "script_name", "api"),
    [("/api/v1/orders/", "", True), ("/api/v1/orders/", "/shop", True), ("/admin/", "/shop", False)],
)
def test_an_api_request_is_told_by_its_path_within_the_site(path, script_name, api):
    """Behind a prefix (``SCRIPT_NAME``) ``request.path`` starts with it; URLs resolve ``path_info``."""
    request = RequestFactory().get(path, SCRIPT_NAME=script_name)
    assert is_api_request(request) is api
