import pytest
from django.core.cache import cache
from pytest_django.plugin import blocking_manager_key
from rest_framework.test import APIClient

from members.services.users import user_token
from tests.members.factories import UserFactory
from tests.shipped_data import load_shipped_data

pytest_plugins = ["tests.wechat.fixtures"]

# Under pytest-xdist (``make test`` runs ``-n auto``) each group runs on one worker, one test after
# another: "shared-services" use the machine's Redis databases and broker (or start processes on
# PRODUCTION_ENV's), which workers cannot share; "demo" shares one seeded demo site and one crawl.
SERIAL_GROUPS = {
    "shared-services": (
        "tests/commerce/test_jobs_worker.py",
        "tests/hardening/test_throttle_shared.py",
        "tests/shequn_backend/test_celery_worker.py",
        "tests/shequn_backend/test_jobs_registry.py",
        "tests/shequn_backend/test_dockerfile.py",
        "tests/shequn_backend/test_embedded_default.py",
        "tests/shequn_backend/test_prepared.py",
        "tests/shequn_backend/test_settings.py",
    ),
    "demo": ("tests/browser/test_every_page.py", "tests/browser/test_demo_purchase.py"),
}


def serial_group(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    for group, prefixes in SERIAL_GROUPS.items():
        if path.startswith(prefixes):
            return group
    return None


def pytest_xdist_make_scheduler(config, log):
    """Every test is its own unit of work but a serial group's tests, which go to one worker
    together. (``--dist loadgroup`` would do this with marks, but it renames node ids in a way
    pytest 9 no longer honours.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SerialGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return serial_group(nodeid) or nodeid

    return SerialGroupScheduling(config, log)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 is deliberately slow; tests check behaviour, not hashing strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _shipped_data_at_start(request, django_db_setup, django_db_blocker):
    """A reused test database may start without the migrations' rows (categories, lexicon). A run of
    tests that need no database has none set up: nothing to load."""
    if any(item.get_closest_marker("django_db") for item in request.session.items):
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
