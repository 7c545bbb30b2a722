"""gunicorn's settings (read from the working directory).

Threaded workers (``gthread``): a request waiting on the payment provider (checkout, 100-300 ms
and up to ``PAYMENT_PROVIDER_TIMEOUT_SECONDS``) idles one thread, not a whole process, so a
2-core machine keeps serving while dozens of checkouts wait. CPU work still runs one thread
at a time per process (the GIL): ``WEB_WORKERS`` processes use the cores (default: one per
core), ``WEB_THREADS`` threads per process absorb the waiting (default 24).

Database budget: with ``CONN_MAX_AGE`` every thread keeps its own PostgreSQL connection, so
one host holds up to ``WEB_WORKERS x WEB_THREADS`` connections (48 by default). Keep the sum
over web hosts, Celery workers and admin tools under PostgreSQL's ``max_connections`` (100 by
default), or put PgBouncer (transaction pooling) in front. See README "Scaling".

``WEB_WORKER_TIMEOUT_SECONDS`` is also what ``manage.py check`` (commerce.E001) compares
``PAYMENT_PROVIDER_TIMEOUT_SECONDS`` with, so the two cannot drift apart.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", str(os.cpu_count() or 1)))
threads = int(os.environ.get("WEB_THREADS", "24"))
timeout = int(os.environ.get("WEB_WORKER_TIMEOUT_SECONDS", "30"))
keepalive = 5


def post_worker_init(worker):
    """Freeze what the loaded app holds (settings, models, URLs: most of a worker's objects) out of
    the garbage collector's full passes: one such pass over them cost ~0.1 s of CPU every few hundred
    requests, a stall for every request of the worker at that moment."""
    import gc

    gc.freeze()
