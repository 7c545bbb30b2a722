"""The commerce app's scheduled jobs (collected by ``shequn_backend.jobs``)."""

from celery.schedules import crontab

from commerce.services.commissions import commission_settle_due
from commerce.services.notifications import notification_send_due
from commerce.services.orders import order_release_expired
from commerce.services.reconciliation import payments_reconcile
from commerce.services.renewals import renewal_reminders_create
from commerce.services.repurchase import repurchase_rates_refresh, repurchase_reminders_create
from commerce.services.shipments import shipments_auto_confirm
from commerce.services.shipping_info import shipping_info_upload_pending
from commerce.services.sync import payments_sync
from commerce.services.withdrawals import withdrawal_sync_due
from shequn_backend.scheduling import Job

RELEASE_STOCK_HOLDS = Job(
    name="release_stock_holds",
    service=order_release_expired,
    task="commerce.release_stock_holds",
    schedule=60.0,
    did="orders cancelled, stock released",
    order=10,
)
SYNC_PAYMENTS = Job(
    name="sync_payments",
    service=payments_sync,
    task="commerce.payments_sync",
    schedule=300.0,
    did="payments and refunds updated from their providers",
    order=15,  # after the expired holds are cancelled: their payments are closed at once
)
CONFIRM_RECEIPTS = Job(
    name="confirm_receipts",
    service=shipments_auto_confirm,
    task="commerce.confirm_receipts",
    schedule=crontab(minute=15),
    did="shipments confirmed received",
    order=18,  # before commissions: settlement waits for delivery
)
UPLOAD_SHIPPING_INFO = Job(
    name="upload_shipping_info",
    service=shipping_info_upload_pending,
    task="commerce.shipping_info_upload_pending",
    schedule=900.0,
    did="shipping information uploads WeChat took",
    order=19,
)
RECONCILE_PAYMENTS = Job(
    name="reconcile_payments",
    service=payments_reconcile,
    task="commerce.payments_reconcile",
    schedule=crontab(hour="10-23", minute=20),  # bills exist from about 10:00; a day not ready is retried
    did="trade bill days reconciled",
    order=65,
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

SYNC_WITHDRAWALS = Job(
    name="sync_withdrawals",
    service=withdrawal_sync_due,
    task="commerce.withdrawals_sync",
    schedule=600.0,
    did="withdrawal transfers checked at WeChat Pay",
    order=25,  # after settlement: nothing depends on it
)

JOBS = [
    RELEASE_STOCK_HOLDS,
    CONFIRM_RECEIPTS,
    UPLOAD_SHIPPING_INFO,
    SYNC_PAYMENTS,
    SETTLE_COMMISSIONS,
    SYNC_WITHDRAWALS,
    RENEWAL_REMINDERS,
    REPURCHASE_REMINDERS,
    REPURCHASE_RATES,
    RECONCILE_PAYMENTS,
    SEND_NOTIFICATIONS,
]
