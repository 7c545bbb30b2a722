"""Project-level tasks that belong to no app."""

from celery import shared_task
from django.db import connection


@shared_task(name="shequn_backend.ping")
def ping_task() -> dict:
    """Answer with the database's clock: proves a worker reaches the broker and the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        (now,) = cursor.fetchone()
    return {"pong": True, "database_time": str(now)}
