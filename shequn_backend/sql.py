"""Hot reads as SQL built once per process, their rows turned into model instances as the ORM would;
and new rows written together, in one message to PostgreSQL.

Django compiles a queryset's SQL on every call (about 1 ms of CPU for a join); the few reads
that run on every checkout or member page keep their SQL in a ``functools.cache`` instead. Each
joined model is named by an alias; ``joined_columns`` lists their columns in the order
``joined_instances`` reads them back.

Related new rows (an order, its lines, its audit row) would take a round trip each, as each
needs the key of the one before: ``pks_allocate`` takes their keys from the sequences first (one
query), and ``insert_sql`` writes their INSERTs with the values the ORM would, to be sent as one message.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model


class _PreparedCursor(psycopg.Cursor):
    """psycopg's server-binding cursor, with what it ran readable by Django's query log, which reads
    ``_query``: psycopg sets it only for a statement it sends unprepared."""

    def _send_query_prepared(self, name, pgq, *, binary=None) -> None:
        self._query = pgq
        super()._send_query_prepared(name, pgq, binary=binary)


@contextmanager
def prepared_cursor() -> Iterator:
    """A cursor for fixed SQL run on every request: its parameters bound by PostgreSQL and its
    statements prepared on the connection (``DATABASE_PREPARED_STATEMENTS``: parsed and planned
    once, not per query). Logged and wrapped like Django's cursors (query counts see it).
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each ``connection.<name>`` is a thread-local lookup
    db.ensure_connection()
    wrap = db.make_debug_cursor if db.queries_logged else db.make_cursor
    with wrap(_PreparedCursor(db.connection)) as cursor:
        yield cursor


def joined_columns(joined: tuple[tuple[str, type[Model]], ...]) -> str:
    """``alias.column, ...`` of every concrete field of each ``(alias, model)``."""
    quote = connection.ops.quote_name
    return ", ".join(
        f"{alias}.{quote(field.column)}" for alias, model in joined for field in model._meta.concrete_fields
    )


def joined_instances(row: tuple, joined: tuple[tuple[str, type[Model]], ...]) -> list[Model | None]:
    """One instance per ``(alias, model)`` from a row of ``joined_columns``; None for a model whose
    primary key is NULL (an outer join found nothing). Values go through the fields' converters."""
    db, instances, start = connections[DEFAULT_DB_ALIAS], [], 0
    for _alias, model in joined:
        fields = model._meta.concrete_fields
        values = [
            field.from_db_value(value, None, db) if hasattr(field, "from_db_value") else value
            for field, value in zip(fields, row[start : start + len(fields)], strict=True)
        ]
        start += len(fields)
        pk = values[fields.index(model._meta.pk)]
        instances.append(None if pk is None else model.from_db(db.alias, [f.attname for f in fields], values))
    return instances


def pks_allocate(*wanted: tuple[type[Model], int]) -> list[list[int]]:
    """New primary keys, ``count`` per ``(model, count)``, from the models' sequences in one query.

    Sequences are not transactional: run it before the transaction (a key whose row is never
    written is a gap, as after any rollback). The tables and counts are written into the SQL, not
    bound: a prepared statement without parameters is planned once, where PostgreSQL replanned
    this one on every call (its generic plan, for any count, looked dearer than each custom one).
    """
    quote = connection.ops.quote_name
    arrays = ", ".join(
        f"ARRAY(SELECT nextval(pg_get_serial_sequence('{quote(model._meta.db_table)}',"  # noqa: S608 - model names
        f" '{model._meta.pk.column}')) FROM generate_series(1, {int(count)}))"
        for model, count in wanted
    )
    with prepared_cursor() as cursor:
        cursor.execute(f"SELECT {arrays}")
        return list(cursor.fetchone())


@cache
def _insert_statement(model: type[Model]) -> tuple[str, str, tuple[Field, ...]]:
    """``INSERT INTO table (every column) VALUES ``, one row's ``(%s, ...)`` and the fields."""
    quote = connection.ops.quote_name
    fields = tuple(field for field in model._meta.local_concrete_fields if not field.generated)
    if any(hasattr(field, "get_placeholder") for field in fields):  # binary columns: not here
        raise ValueError(f"{model.__name__} has a column with its own placeholder.")
    columns = ", ".join(quote(field.column) for field in fields)
    head = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608 - model names
    return head, "(" + ", ".join(["%s"] * len(fields)) + ")", fields


def insert_sql(objs: list[Model]) -> str:
    """The INSERTs of ``objs`` (primary keys set), one per model in order of first appearance, with
    the values ``save`` would write (``pre_save``: ``auto_now``, then ``get_db_prep_save``) bound
    by the driver (``mogrify``, each row apart: its conversion of a row's SQL is cached, not that
    of a long message); no RETURNING. SQL built once per process (the ORM's compiler cost a
    millisecond per order).

    The caller sends them (``stock_take_in_one_message``), then ``mark_inserted`` the objects.
    """
    db = connections[DEFAULT_DB_ALIAS]
    groups: dict[type[Model], list[Model]] = {}
    for obj in objs:
        groups.setdefault(type(obj), []).append(obj)
    statements = []
    with db.cursor() as cursor:
        for model, group in groups.items():
            head, row, fields = _insert_statement(model)
            rows = []
            for obj in group:
                values = []
                for field in fields:
                    value = field.pre_save(obj, True)
                    if hasattr(value, "resolve_expression"):  # a db_default left to the database
                        raise ValueError(f"{model.__name__}.{field.name}: set a value to insert it here.")
                    values.append(field.get_db_prep_save(value, db))
                rows.append(cursor.mogrify(row, values))
            statements.append(head + ", ".join(rows))
    return "; ".join(statements)


def mark_inserted(objs: list[Model]) -> None:
    """What ``save`` sets on an instance it inserted."""
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
