"""Login throttling counts in the shared cache: a second process sees the first one's attempts."""

import pytest
import redis

from tests.shequn_backend.processes import clean_env, manage

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def shared_cache(settings):
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}}
    yield
    client.flushdb()


SECOND_PROCESS = """
from django.test import Client
body = {"username": "x", "password": "y"}
response = Client().post("/api/v1/auth/login/", body, content_type="application/json")
print("STATUS", response.status_code)
"""


@pytest.mark.django_db
def test_a_second_worker_process_sees_the_login_attempts_of_the_first(api_client, shared_cache):
    for _ in range(10):
        assert (
            api_client.post(
                "/api/v1/auth/login/", {"username": "x", "password": "y"}, format="json"
            ).status_code
            == 400
        )
    env = clean_env(DEBUG="1", CACHE_URL=REDIS_URL, ALLOWED_HOSTS="testserver")
    result = manage("shell", "-c", SECOND_PROCESS, env=env)
    assert "STATUS 429" in result.stdout, result.stdout + result.stderr


def test_production_compose_points_the_cache_at_redis():
    import yaml

    from tests.shequn_backend.processes import ROOT

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["web"]["environment"]["CACHE_URL"].startswith("redis://")
