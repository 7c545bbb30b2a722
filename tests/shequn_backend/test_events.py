"""Events sent on commit and after-commit side effects: run after a commit only, and never fail it."""

import logging

import pytest
from celery import Celery
from django.db import transaction
from django.dispatch import Signal

from shequn_backend.events import enqueue, enqueue_on_commit, on_commit_robust, send_on_commit

pytestmark = pytest.mark.django_db


@pytest.fixture
def happened():
    """A signal of its own with a listener that notes each delivery."""
    signal, heard = Signal(), []

    def listen(sender, **kwargs):
        heard.append(kwargs)

    signal.connect(listen, weak=False)
    return signal, heard


@pytest.fixture
def unreachable_task():
    """A real task on a Celery app whose broker nothing listens to."""
    app = Celery("unreachable", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.broker_transport_options = {"max_retries": 0}  # fail at once, not after ~6 s of retries

    @app.task(name="tests.unreachable")
    def noop():
        return None

    yield noop
    app.close()


def test_send_on_commit_delivers_after_the_commit_not_before(happened, django_capture_on_commit_callbacks):
    signal, heard = happened

    with django_capture_on_commit_callbacks(execute=True):
        send_on_commit(signal, sender=object, order_id=7)
        assert heard == []  # not committed yet

    assert heard == [{"signal": signal, "order_id": 7}]


def test_send_on_commit_delivers_nothing_when_the_write_rolls_back(
    happened, django_capture_on_commit_callbacks
):
    signal, heard = happened

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        send_on_commit(signal, sender=object, order_id=7)
        raise RuntimeError("the write failed")

    assert callbacks == [] and heard == []


def test_a_failing_receiver_is_logged_and_the_others_still_run(
    happened, django_capture_on_commit_callbacks, caplog
):
    signal, heard = happened

    def explode(sender, **kwargs):
        raise ValueError("receiver broke")

    signal.connect(explode, weak=False)
    signal.connect(lambda sender, **kwargs: heard.append("after"), weak=False)

    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        send_on_commit(signal, sender=object, order_id=7)

    assert heard == [{"signal": signal, "order_id": 7}, "after"]
    assert "event receiver" in caplog.text and "receiver broke" in caplog.text


def test_enqueue_with_an_unreachable_broker_returns_false_and_logs(unreachable_task, caplog):
    with caplog.at_level(logging.WARNING):
        assert enqueue(unreachable_task) is False

    assert "could not queue tests.unreachable" in caplog.text


def test_enqueue_on_commit_waits_for_the_commit_and_never_raises(
    unreachable_task, django_capture_on_commit_callbacks, caplog
):
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_on_commit(unreachable_task)
        assert "could not queue" not in caplog.text

    assert len(callbacks) == 1 and "could not queue tests.unreachable" in caplog.text


def test_on_commit_robust_registers_a_robust_callback(django_capture_on_commit_callbacks):
    ran = []

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        on_commit_robust(lambda: ran.append(1))
        robust_flags = [robust for _, _, robust in transaction.get_connection().run_on_commit]

    assert ran == [1] and len(callbacks) == 1 and robust_flags[-1] is True
