"""Thin Celery wrappers around members services."""

from datetime import datetime

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from members.jobs import EXPIRE_MEMBERSHIPS
from members.services.expiry import membership_expire_due

RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 5}


@shared_task(name=EXPIRE_MEMBERSHIPS.task, acks_late=True, **RETRY)
def memberships_expire_task(now: str | None = None) -> int:
    """Turn memberships past their expiry ``expired``."""
    return membership_expire_due(now=datetime.fromisoformat(now) if now else timezone.now())
