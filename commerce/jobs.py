"""The commerce app's scheduled jobs (collected by ``shequn_backend.jobs``)."""

from celery.schedules import crontab

from commerce.services.commissions import commission_settle_due
from commerce.services.notifications import notification_send_due
from commerce.services.orders import order_release_expired
from commerce.services.renewals import renewal_reminders_create
from commerce.services.repurchase import repurchase_rates_refresh, repurchase_reminders_create
from shequn_backend.scheduling import Job

RELEASE_STOCK_HOLDS = Job(
    name="release_stock_holds",
    service=order_release_expired,
    task="commerce.release_stock_holds",
    schedule=60.0,
    did="orders cancelled, stock released",
    order=10,
)
SETTLE_COMMISSIONS = Job(
    name="settle_commissions",
    service=commission_settle_due,
    task="commerce.commissions_settle",
    schedule=crontab(minute=5),
    did="commissions settled",
    order=20,
)
RENEWAL_REMINDERS = Job(
    name="renewal_reminders",
    service=renewal_reminders_create,
    task="commerce.renewal_reminders",
    schedule=crontab(hour=9, minute=0),
    did="renewal reminders created",
    order=40,
)
REPURCHASE_REMINDERS = Job(
    name="repurchase_reminders",
    service=repurchase_reminders_create,
    task="commerce.repurchase_reminders",
    schedule=crontab(hour=9, minute=30),
    did="repurchase reminders created",
    order=50,
)
REPURCHASE_RATES = Job(
    name="repurchase_rates",
    service=repurchase_rates_refresh,
    task="commerce.repurchase_rates",
    schedule=crontab(hour=2, minute=30),
    did="repurchase rates stored",
    order=60,
)
SEND_NOTIFICATIONS = Job(
    name="send_notifications",
    service=notification_send_due,
    task="commerce.notifications_send",
    schedule=60.0,
    did="notifications sent",
    order=90,  # last: sends the reminders created before it
)

JOBS = [
    RELEASE_STOCK_HOLDS,
    SETTLE_COMMISSIONS,
    RENEWAL_REMINDERS,
    REPURCHASE_REMINDERS,
    REPURCHASE_RATES,
    SEND_NOTIFICATIONS,
]
