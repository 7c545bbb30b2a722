"""Client addresses behind trusted proxies, and request bodies that are too deep or too large."""

import pytest
import yaml

from tests.conftest import client_for
from tests.members.factories import UserFactory
from tests.members.test_auth_api import assert_error
from tests.shequn_backend.processes import ROOT

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
BAD_LOGIN = {"username": "nobody", "password": "wrong"}


@pytest.fixture
def trusted_proxies(settings):
    def configure(count: int) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": count}

    return configure


def login_from(api_client, forwarded_for: str, remote_addr: str = "10.0.0.1"):
    return api_client.post(
        LOGIN, BAD_LOGIN, format="json", HTTP_X_FORWARDED_FOR=forwarded_for, REMOTE_ADDR=remote_addr
    )


def test_without_trusted_proxies_a_rotating_forwarded_for_does_not_dodge_the_login_throttle(api_client):
    """Given no proxy is trusted (the default), when one client sends a new X-Forwarded-For each time,
    then its attempts still count together and the eleventh is throttled."""
    for attempt in range(10):
        assert login_from(api_client, f"198.51.100.{attempt}").status_code == 400
    assert_error(login_from(api_client, "198.51.100.99"), 429, "throttled")


def test_behind_one_proxy_the_right_most_address_is_the_client(api_client, trusted_proxies):
    """Given one trusted proxy, when the client forges the left part of X-Forwarded-For, then the
    address the proxy appended (right-most) is what counts, and another client is not affected."""
    trusted_proxies(1)
    for attempt in range(10):
        assert login_from(api_client, f"198.51.100.{attempt}, 203.0.113.7").status_code == 400
    assert_error(login_from(api_client, "198.51.100.99, 203.0.113.7"), 429, "throttled")
    assert login_from(api_client, "203.0.113.7, 203.0.113.8").status_code == 400


def test_register_and_wechat_login_share_the_throttle_by_client_address(api_client):
    for attempt in range(10):
        response = api_client.post(
            "/api/v1/auth/register/", {}, format="json", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}"
        )
        assert response.status_code == 400
    response = api_client.post("/api/v1/auth/wechat/", {}, format="json", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert_error(response, 429, "throttled")


def test_compose_trusts_exactly_one_proxy_in_front_of_web():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["web"]["environment"]["TRUSTED_PROXY_COUNT"] == "1"
    assert services["web"]["environment"]["CACHE_URL"].startswith("redis://")


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("url", "method", "authenticated"),
    [
        ("/api/v1/auth/login/", "post", False),
        ("/api/v1/auth/register/", "post", False),
        ("/api/v1/me/", "patch", True),
        ("/api/v1/owner/communities/", "post", True),
    ],
)
def test_deeply_nested_json_is_a_400_parse_error_not_a_500(api_client, url, method, authenticated):
    client = client_for(UserFactory()) if authenticated else api_client
    response = getattr(client, method)(url, deep(1024), content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_moderate_nesting_within_the_limit_is_parsed_and_validated(api_client):
    response = api_client.post(LOGIN, '{"username": [[[[["x"]]]]]}', content_type="application/json")
    assert_error(response, 400, "validation_error")


def test_nesting_below_the_recursion_limit_but_over_ours_is_refused(api_client):
    response = api_client.post(LOGIN, deep(200), content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_a_body_over_the_upload_limit_is_refused_before_parsing(api_client, settings):
    """Given a 1 KB limit, when a 2 KB JSON body arrives, then it is a 413 in the contract shape."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"username": "%s", "password": "x"}' % ("a" * 2048)
    assert_error(api_client.post(LOGIN, body, content_type="application/json"), 413, "request_too_large")


def test_a_body_within_the_limit_is_parsed(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    assert_error(api_client.post(LOGIN, BAD_LOGIN, format="json"), 400, "invalid_credentials")


def test_invalid_utf8_is_a_parse_error(api_client):
    response = api_client.post(LOGIN, b'{"username": "\xff"}', content_type="application/json")
    assert_error(response, 400, "parse_error")
