"""A kept PostgreSQL connection is checked before each request by a poll of its socket: no round
trip while it is well, and replaced before the request's first query once the server has ended it."""

import time

import pytest
from django.db import DataError, connection, connections

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kept():
    """A second connection to the test database, as a web thread keeps it between requests."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def activity(pid: int) -> tuple[str, str] | None:
    """The backend's state and last statement, as PostgreSQL reports them to another connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()


def test_postgresql_connections_use_the_socket_health_check(kept):
    assert type(kept).__module__ == "shequn_backend.postgresql.base"
    assert kept.health_check_enabled


def test_a_kept_connection_is_checked_without_a_round_trip(kept):
    with kept.cursor() as cursor:
        cursor.execute("SELECT 'the last request'")
    kept.close_if_unusable_or_obsolete()  # request_started
    kept.close_if_health_check_failed()  # what the request's first query does first
    assert kept.health_check_done
    assert kept.is_usable()
    assert activity(kept.connection.info.backend_pid) == ("idle", "SELECT 'the last request'")


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it(kept):
    ended = kept.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [ended])
    deadline = time.monotonic() + 10
    while activity(ended) is not None:
        assert time.monotonic() < deadline, "the backend did not end"
        time.sleep(0.02)
    assert not kept.is_usable()

    kept.close_if_unusable_or_obsolete()  # request_started
    with kept.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != ended


def test_a_connection_in_a_failed_transaction_is_not_usable(kept):
    kept.set_autocommit(False)
    with pytest.raises(DataError), kept.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")
    assert not kept.is_usable()
    kept.rollback()
    assert kept.is_usable()
