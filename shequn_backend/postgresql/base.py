"""Django's PostgreSQL backend, with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before each request's first query on a kept
connection: a round trip and a statement per request, a fifth of ``/healthz``'s CPU
(docs/benchmarks.md). A server that drops a connection (a restart, ``pg_terminate_backend``, a
pooler's timeout) says so on its socket: PostgreSQL sends a FATAL error and closes, and the socket
turns readable. An idle connection's socket has nothing to read, so a poll of it that does not wait
tells the two apart. Neither check notices a peer that vanished without a word: ``SELECT 1`` would
wait for TCP to give up. (Nothing here LISTENs, so no notification can make an idle socket readable.)
"""

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

_READY = (TransactionStatus.IDLE, TransactionStatus.INTRANS)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.info.transaction_status not in _READY:
            return False
        poll = select.poll()
        poll.register(connection.fileno(), select.POLLIN)
        return not poll.poll(0)  # anything to read (or a hang-up) on an idle connection ends it
