"""gunicorn's settings (read from the working directory).

Threaded workers (``gthread``): a request waiting on the payment provider (checkout, 100-300 ms
and up to ``PAYMENT_PROVIDER_TIMEOUT_SECONDS``) idles one thread, not a whole process, so a
2-core machine keeps serving while dozens of checkouts wait. CPU work still runs one thread
at a time per process (the GIL), and a process whose threads hand the GIL to each other leaves
its core idle for the hand-over (the woken thread waits to be scheduled): ``WEB_WORKERS``
processes (default: two per core, so other processes fill those gaps) and ``WEB_THREADS``
threads per process to absorb the waiting (default 16). On 2 cores, 200 buyers racing for 50
units got their answers sooner from 4 x 16 than from 3 x 16 in each of three alternating
pairs (median p99 563-676 ms against 649-855 ms), with checkout throughput no lower; 2 x 24
took fewer checkouts than 3 x 16 (see docs/benchmarks.md).

Each worker accepts on its own ``SO_REUSEPORT`` socket (``reuse_port``, as gunicorn 27 does it; Linux
spreads connections over them by address hash). On one shared socket the first worker to wake
takes the connection: 200 buyers connecting at once went 120 / 52 / 28 to three workers, so most
of them queued behind one core while the others idled.

Database budget: with ``CONN_MAX_AGE`` every thread keeps its own PostgreSQL connection, so
one host holds up to ``WEB_WORKERS x WEB_THREADS`` connections (64 on 2 cores). Keep the sum
over web hosts, Celery workers and admin tools under PostgreSQL's ``max_connections`` (100 by
default), or put PgBouncer (transaction pooling) in front. See README "Scaling"; docker-compose.yml
sets 4 x 16.

``WEB_WORKER_TIMEOUT_SECONDS`` is also what ``manage.py check`` (commerce.E001) compares
``PAYMENT_PROVIDER_TIMEOUT_SECONDS`` with, so the two cannot drift apart.
"""

import os

worker_class = "gthread"
# The cores this process may run on (a container's cpuset, not the host's count where it can tell).
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
workers = int(os.environ.get("WEB_WORKERS", str(2 * _cores)))
threads = int(os.environ.get("WEB_THREADS", "16"))
timeout = int(os.environ.get("WEB_WORKER_TIMEOUT_SECONDS", "30"))
keepalive = 5
reuse_port = True


def post_worker_init(worker):
    """Freeze what the loaded app holds (settings, models, URLs: most of a worker's objects) out of
    the garbage collector's full passes: one such pass over them cost ~0.1 s of CPU every few hundred
    requests, a stall for every request of the worker at that moment."""
    import gc

    gc.freeze()
