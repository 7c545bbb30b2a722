"""Hot reads of fixed SQL: prepared on the connection once, still counted, and switched off by a setting."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commerce.services.stock import skus_read
from shequn_backend.sql import prepared_cursor
from tests.commerce.factories import SkuFactory
from tests.shequn_backend.processes import clean_env, manage

pytestmark = pytest.mark.django_db


def prepared(fragment: str) -> int:
    """How many statements prepared on this connection contain ``fragment``."""
    with connection.cursor() as cursor:
        sql = "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s"
        cursor.execute(sql, [f"%{fragment}%"])
        return cursor.fetchone()[0]


def test_a_hot_read_is_prepared_once_and_every_run_is_still_a_counted_query():
    sku = SkuFactory(stock=7)
    with CaptureQueriesContext(connection) as queries:
        first, again = skus_read(sku_ids=[sku.pk]), skus_read(sku_ids=[sku.pk, sku.pk + 1])
    assert len(queries) == 2 and first[sku.pk].stock == again[sku.pk].stock == 7
    assert all("FROM commerce_sku s" in query["sql"] for query in queries.captured_queries)  # logged
    assert first[sku.pk].product.pk == sku.product_id
    assert (
        prepared("s.id IN ($1)") == 1 and prepared("s.id IN ($1, $2)") == 1
    )  # bound by the server, parsed and planned once


def test_with_the_setting_off_nothing_is_prepared(monkeypatch):
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 40", [2])
        assert cursor.fetchone() == (42,)
    assert prepared("::int + 40") == 0
    monkeypatch.setattr(connection.connection, "prepare_threshold", 0)
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 40", [3])
        assert cursor.fetchone() == (43,)
    assert prepared("::int + 40") == 1


@pytest.mark.parametrize(("value", "threshold"), [(None, "0"), ("0", "None"), ("1", "0")])
def test_database_prepared_statements_sets_the_connections_threshold(value, threshold):
    env = {"DATABASE_PREPARED_STATEMENTS": value} if value is not None else {}
    script = (
        "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    )
    env = clean_env(DEBUG="1", DATABASE_URL="postgres://u@127.0.0.1:1/x", **env)
    result = manage("shell", "--no-imports", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == threshold
