import pytest

from tests.commerce.money import assert_money_reconciles
from tests.commerce.stripe_server import FakeStripe


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hundreds of buyers: hash their passwords cheaply (tests only)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def stripe(settings):
    """A local Stripe-compatible server; the real stripe library is pointed at it."""
    server = FakeStripe()  # strict: refuses what Stripe refuses
    settings.STRIPE_API_BASE = server.start()
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_local"
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _money_reconciles(request):
    """After every test that touched the database: every order's money adds up."""
    yield
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(
        request.fixturenames
    )
    if uses_db and not getattr(request.node, "call_failed", False):
        assert_money_reconciles()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.call_failed = True
    return report
