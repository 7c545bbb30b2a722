"""The data the migrations ship (the category tree, the trust lexicon), put back after flushes.

Live-server and other committing tests flush the database, and a reused test
database (--reuse-db) may start a session without the migrations' rows; both
loaders are idempotent. The loaders take most of a second (a query per
category), so on PostgreSQL the first load keeps a ``COPY`` of the rows and
later loads into the flushed tables copy them back in one round trip each.
"""

from importlib import import_module

from django.apps import apps
from django.core.management.color import no_style
from django.db import connection, transaction

SHIPPED_MODELS = (
    "commerce.Category",
    "trust.Domain",
    "trust.DomainTerm",
    "trust.DomainRelation",
    "trust.CategoryAudience",
)
_copies: dict[str, bytes] = {}


def load_shipped_data() -> None:
    """Put the shipped rows back: from the kept copy into empty tables, else through the loaders."""
    models = [apps.get_model(label) for label in SHIPPED_MODELS]
    tables = [model._meta.db_table for model in models]
    if connection.vendor != "postgresql":
        _run_loaders()
    elif _copies and _tables_empty(tables):
        _copy_in(tables, models)
    else:
        _run_loaders()
        _copy_out(tables)


def _run_loaders() -> None:
    import_module("commerce.migrations.0002_default_categories").load_categories(apps, None)
    import_module("trust.migrations.0002_load_lexicon").load(apps, None)


def _tables_empty(tables: list[str]) -> bool:
    union = " UNION ALL ".join(f'(SELECT 1 FROM "{table}" LIMIT 1)' for table in tables)  # noqa: S608 (model tables)
    with connection.cursor() as cursor:
        cursor.execute(union)
        return cursor.fetchone() is None


def _copy_out(tables: list[str]) -> None:
    with connection.cursor() as cursor:
        for table in tables:
            with cursor.cursor.copy(f'COPY "{table}" TO STDOUT (FORMAT binary)') as copy:
                _copies[table] = b"".join(bytes(block) for block in copy)


def _copy_in(tables: list[str], models: list) -> None:
    """Foreign keys are deferred to the commit, so the tables' order does not matter. A flush that
    restarted the sequences (``flush``'s default) would hand out the copied rows' keys again: each
    sequence is moved past them."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table in tables:
            with cursor.cursor.copy(f'COPY "{table}" FROM STDIN (FORMAT binary)') as copy:
                copy.write(_copies[table])
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
