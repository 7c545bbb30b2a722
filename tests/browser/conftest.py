"""Browser tests: Playwright driving Debian's headless Chromium against a live server.

No browser is downloaded: ``make test`` installs Debian's ``chromium`` package
and Playwright (whose PyPI wheel ships its driver) launches /usr/bin/chromium.
Screenshots go to ``test-artifacts/browser/`` (git-ignored, kept by CI).
"""

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium).")
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the tests
    # themselves (setting up data between browser steps) are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, settings):
    """A fresh Chinese-speaking browser context on the live server (plain HTTP: no secure cookies)."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shoot(page):
    """Save a full-page screenshot under test-artifacts/browser/ (the CI keeps them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def login(page, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


# --- The seeded demo, served once per session -------------------------------------------------
#
# Seeding the demo takes seconds, so the tests that walk it share one copy: a session fixture
# seeds it, serves it on its own live server and flushes it at the end. Those tests do not use
# ``live_server`` or ``transaction=True`` (each would flush the demo after every test): they are
# marked ``django_db`` (their own reads roll back) and run last in the session, after every other
# database test (see pytest_collection_modifyitems), which therefore never sees the demo.

DEMO_SETTINGS = {
    "PAYMENT_SANDBOX_ENABLED": True,  # the embedded default: payments through the sandbox
    "STRIPE_SECRET_KEY": "",
    "CELERY_TASK_ALWAYS_EAGER": True,
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    "SESSION_COOKIE_SECURE": False,
    "CSRF_COOKIE_SECURE": False,
    "SECURE_SSL_REDIRECT": False,
}


def _flush_demo() -> None:
    from django.core.management import call_command

    from tests.shipped_data import load_shipped_data

    call_command("flush", interactive=False, verbosity=0)  # post_migrate puts permissions back
    load_shipped_data()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The tests on the shared demo run last (after pytest-django's own ordering)."""
    items.sort(key=lambda item: "demo_site" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="package")
def demo_site(django_db_setup, django_db_blocker, tmp_path_factory):
    """The URL of a live server over the seeded demo (``seed_demo``), shared by the tests that run
    one after another on it (last in a serial run, one group under xdist); flushed when the next
    test is outside this package, so no other test sees the demo's rows."""
    from django.core.management import call_command
    from django.test.utils import override_settings
    from pytest_django.live_server_helper import LiveServer

    media = tmp_path_factory.mktemp("demo-media")
    with django_db_blocker.unblock(), override_settings(**DEMO_SETTINGS, MEDIA_ROOT=media):
        _flush_demo()  # a reused database may keep an interrupted session's rows
        call_command("seed_demo", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
        server = LiveServer("localhost")
        try:
            yield server.url
        finally:
            server.stop()
            _flush_demo()


@pytest.fixture(scope="package")
def staff_pages(browser, demo_site):
    """One logged-in page per demo login, made on first use and kept for the session."""
    from members.demo import DEMO_PASSWORD

    contexts, pages = [], {}

    def page_for(username: str):
        if username not in pages:
            context = browser.new_context(
                base_url=demo_site,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                viewport={"width": 1280, "height": 900},
                accept_downloads=True,
            )
            context.set_default_timeout(TIMEOUT_MS)
            contexts.append(context)
            pages[username] = context.new_page()
            if username is not None:
                login(pages[username], username, DEMO_PASSWORD)
        return pages[username]

    yield page_for
    for context in contexts:
        context.close()
