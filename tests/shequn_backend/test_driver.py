"""The database driver, as pinned, is safe where the web tier uses it from many threads at once."""

import sys
import threading
import uuid

from psycopg.adapt import AdaptersMap, PyFormat
from psycopg.types.uuid import UUIDDumper

CONNECTIONS = 8


def first_uses_failed() -> int:
    """How many of ``CONNECTIONS`` connections, adapting their first UUID at the same instant, fail.

    psycopg registers some adapters by class name and swaps the class in at first use, in a
    mapping every connection shares with the global one; before 3.3.2 the swap was not atomic
    (psycopg#1230): two of a flash sale's first 200 buyers got a 500, "cannot adapt type 'UUID'".
    """
    shared = AdaptersMap()
    shared.register_dumper("uuid.UUID", UUIDDumper)
    connections = [AdaptersMap(shared) for _ in range(CONNECTIONS)]
    start, failures = threading.Barrier(CONNECTIONS), []

    def first_use(adapters: AdaptersMap) -> None:
        start.wait()
        try:
            adapters.get_dumper(uuid.UUID, PyFormat.TEXT)
        except Exception as exc:  # noqa: BLE001 - counted, whatever it is
            failures.append(exc)

    threads = [threading.Thread(target=first_use, args=(adapters,)) for adapters in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(failures)


def test_connections_adapting_their_first_uuid_at_once_all_succeed():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch as often as possible: without the fix 5-30% of runs fail
    try:
        failed = sum(first_uses_failed() for _ in range(400))
    finally:
        sys.setswitchinterval(interval)
    assert failed == 0
