"""gunicorn as gunicorn.conf.py configures it: each worker accepts on its own socket.

With one socket shared by all workers, whichever worker wakes first takes the
connection: 200 connections opened at once went 120 / 52 / 28 to three workers,
so a flash sale's buyers queued behind one core. With ``reuse_port`` each
worker binds its own ``SO_REUSEPORT`` socket and the kernel spreads
connections by their address hash.
"""

import re
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.shequn_backend.processes import ROOT, clean_env, free_port, wait_for_http

WORKERS = 3


def _sockets(port: int, state: str) -> list[str]:
    command = ["ss", "-tnpH", "state", state, f"( sport = :{port} )"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()


def _owners(port: int, state: str) -> Counter:
    """How many sockets in ``state`` each process holds (one accepted by nobody yet has no owner)."""
    owned = (re.search(r"pid=(\d+)", line) for line in _sockets(port, state))
    return Counter(match.group(1) for match in owned if match)


@pytest.fixture
def gunicorn():
    port = free_port()
    env = clean_env(DEBUG="1", WEB_WORKERS=str(WORKERS), WEB_THREADS="2")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "shequn_backend.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=server)
        deadline = time.monotonic() + 30
        while len(_sockets(port, "listening")) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.2)  # the last workers are still booting
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_each_worker_listens_on_its_own_socket_and_connections_spread_over_all_of_them(gunicorn):
    listeners = _owners(gunicorn, "listening")
    assert len(listeners) == WORKERS and set(listeners.values()) == {1}

    clients = [socket.create_connection(("127.0.0.1", gunicorn)) for _ in range(150)]
    try:
        deadline = time.monotonic() + 10
        per_worker = _owners(gunicorn, "established")
        while sum(per_worker.values()) < len(clients) and time.monotonic() < deadline:
            time.sleep(0.1)  # some still wait in a queue
            per_worker = _owners(gunicorn, "established")
    finally:
        for client in clients:
            client.close()
    assert set(per_worker) == set(listeners)
    # An even spread is 50 each; the address hash keeps every worker far from the shared socket's 60%.
    assert max(per_worker.values()) <= 75, per_worker
