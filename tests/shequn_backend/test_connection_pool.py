"""``DATABASE_POOL_SIZE``: a connection pool per process, and connections given back while waiting.

Checkout waits 100-300 ms on the payment provider between its transactions; with a pool the
thread's connection goes back to the pool for that time (``connection_released``), so a worker
can run more threads than PostgreSQL has connections for, and taking it back costs no login.
"""

import subprocess
import sys

import pytest
from django.db import connection

from shequn_backend.db import connection_released
from tests.shequn_backend.processes import ROOT, clean_env

pytestmark = pytest.mark.django_db

CHILD = """
import django
django.setup()
from django.conf import settings
from django.db import connection
from shequn_backend.db import connection_released

assert settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"] == 2
assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0

def pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

pid()
opened = connection.pool.get_stats()["connections_num"]
with connection_released():
    assert connection.connection is None  # back in the pool while the provider answers
    assert connection.pool.get_stats()["pool_available"] >= 1
pid()
assert connection.pool.get_stats()["connections_num"] == opened  # taken back from the pool: no login
with connection.cursor() as cursor:  # a transaction keeps its connection
    from django.db import transaction
    with transaction.atomic():
        cursor.execute("SELECT 1")
        with connection_released():
            assert connection.connection is not None
print("ok")
"""


def database_url() -> str:
    """The test database (the suite runs on PostgreSQL)."""
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER'] or 'postgres'}@{host}:{port}/{db['NAME']}"


def test_a_pooled_connection_goes_back_to_the_pool_while_waiting_and_comes_back_without_a_login():
    env = clean_env(DEBUG="1", DATABASE_URL=database_url(), DATABASE_POOL_SIZE="2")
    env["DJANGO_SETTINGS_MODULE"] = "shequn_backend.settings"
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_without_a_pool_the_connection_stays_open():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    held = connection.connection
    with connection_released():
        assert connection.connection is held
