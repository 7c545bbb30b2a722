"""The members app's scheduled jobs (collected by ``shequn_backend.jobs``)."""

from celery.schedules import crontab

from members.services.expiry import membership_expire_due
from shequn_backend.scheduling import Job

EXPIRE_MEMBERSHIPS = Job(
    name="expire_memberships",
    service=membership_expire_due,
    task="members.memberships_expire",
    schedule=crontab(minute=10),
    did="memberships expired",
    order=30,
)

JOBS = [EXPIRE_MEMBERSHIPS]
