"""Explicit events between apps, and side effects that run after commit and never fail a request.

An app announces what happened with a ``Signal`` declared in its own
``events.py`` (``members.events``, ``commerce.events``) and sends it with
``send_on_commit``; listeners (trust, the notification outbox) connect to
those signals in their ``AppConfig.ready``. No app connects to ``post_save``
of another app's models.

Everything here runs once the sending transaction has committed (at once
outside one) and is *robust*: a failing listener, an unreachable broker or
cache is logged and swallowed, because the write it follows is already
committed and the client must hear what was done. Work lost that way is
picked up by the periodic scans (stale flags, outboxes).
"""

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)


def send_on_commit(signal: Signal, *, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` after commit; each receiver's error is logged, never raised to the caller."""

    def send() -> None:
        for receiver, result in signal.send_robust(sender=sender, **kwargs):
            if isinstance(result, Exception):
                logger.error(
                    "event receiver %s failed", getattr(receiver, "__qualname__", receiver), exc_info=result
                )

    transaction.on_commit(send)


def enqueue(task: Any, *args: Any, **kwargs: Any) -> bool:
    """Queue a Celery task now; False (and a log line) when the broker cannot take it.

    ``retry=False``: a request must not wait for a broker that is down; the
    periodic scan that also finds this work is the retry.
    """
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False)
    except Exception:  # noqa: BLE001 - kombu, redis, amqp and socket errors share no base class
        logger.warning("could not queue %s; the periodic scan will pick it up", task.name, exc_info=True)
        return False
    return True


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue a Celery task once the transaction commits, never failing the committed request."""
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))


def on_commit_robust(func: Any) -> None:
    """Run ``func`` after commit; an error (cache down, mail server down) is logged, never raised."""
    transaction.on_commit(func, robust=True)
