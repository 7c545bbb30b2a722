import pytest
from django.core.cache import cache
from pytest_django.plugin import blocking_manager_key
from rest_framework.test import APIClient

from members.services.users import user_token
from tests.members.factories import UserFactory
from tests.shipped_data import load_shipped_data

pytest_plugins = ["tests.wechat.fixtures"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 is deliberately slow; tests check behaviour, not hashing strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _shipped_data_at_start(django_db_setup, django_db_blocker):
    """A reused test database may start without the migrations' rows (categories, lexicon)."""
    with django_db_blocker.unblock():
        load_shipped_data()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Committing tests (transaction=True, live servers) end with a flush that also removes the
    rows migrations ship (categories, lexicon): put them back once the flush is done."""
    result = yield
    marker = item.get_closest_marker("django_db")
    committing = (marker is not None and marker.kwargs.get("transaction")) or {
        "live_server",
        "transactional_db",
    } & set(getattr(item, "fixturenames", ()))
    if committing:
        with item.config.stash[blocking_manager_key].unblock():
            load_shipped_data()
    return result


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token(user=user)}")
    return client


@pytest.fixture
def user_client(user) -> APIClient:
    return client_for(user)
