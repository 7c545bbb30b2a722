"""Reads that may go to a PostgreSQL replica: reports, exports and dashboards.

With ``DATABASE_REPLICA_URL`` set, settings define a ``replica`` database and
``REPLICA_READS`` (on by default). Code that only reads and tolerates a few
seconds of replication lag wraps itself in ``reading_from_replica()``; inside
it ``ReplicaRouter`` sends model reads to the replica. Everything else,
and every write (progress of an export job, say), stays on ``default``, so a
request always reads its own writes.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

DEFAULT, REPLICA = "default", "replica"
_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def reporting_alias() -> str:
    """The database reports read from: the replica when one is configured and enabled, else default."""
    if REPLICA in settings.DATABASES and getattr(settings, "REPLICA_READS", True):
        return REPLICA
    return DEFAULT


@contextmanager
def reading_from_replica() -> Iterator[str]:
    """Within the block, model reads go to ``reporting_alias()``; yields that alias."""
    token = _replica_reads.set(True)
    try:
        yield reporting_alias()
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return reporting_alias() if _replica_reads.get() else None

    def db_for_write(self, model, **hints):
        return DEFAULT

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT
