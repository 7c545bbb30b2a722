"""Tasks run eagerly (embedded mode, the test process) from several threads at once.

Celery guards ``result.get()`` inside a task with one process-wide flag that
each eager run saves, sets and restores. Two runs overlapping in threads, the
first to start ending first, used to leave it set; every later
``result.get()`` in the process (the worker tests' client) then failed with
"Never call result.get() within a task".
"""

from threading import Event, Thread

import pytest
from celery._state import _set_task_join_will_block, task_join_will_block

from shequn_backend.celery import app
from shequn_backend.tasks import ping_task

INSIDE = {"first": Event(), "second": Event()}
LEAVE = {"first": Event(), "second": Event()}


@app.task(name="tests.held_inside")
def held_inside(run: str) -> str:
    """Runs until the test lets it leave, so that the test orders the overlap."""
    INSIDE[run].set()
    assert LEAVE[run].wait(timeout=10)
    return run


@pytest.fixture
def join_guard():
    """Whatever a failing run leaves behind, the next tests start from Celery's default."""
    for event in [*INSIDE.values(), *LEAVE.values()]:
        event.clear()
    yield
    _set_task_join_will_block(False)


def start(run: str) -> Thread:
    thread = Thread(target=held_inside.delay, args=(run,))
    thread.start()
    assert INSIDE[run].wait(timeout=10)
    return thread


@pytest.mark.django_db
def test_two_overlapping_eager_runs_leave_results_joinable_whichever_ends_first(join_guard):
    assert app.conf.task_always_eager
    first = start("first")
    second = start("second")  # starts while the first runs: it saves the flag the first one set

    LEAVE["first"].set()
    first.join()
    LEAVE["second"].set()
    second.join()

    assert task_join_will_block() is False
    assert ping_task.delay().get(timeout=10)["pong"] is True
