"""Reconciling WeChat Pay's daily trade bill with our payments and refunds (``run_jobs reconcile_payments``).

A day's bill exists from about 10:00 (Asia/Shanghai) the next day; before
that WeChat answers ``STATEMENT_CREATING`` and the day's run stays pending,
tried again by the next run. ``NO_STATEMENT_EXIST`` is a day without trades:
it is compared all the same (our side must be empty too). In partner mode
there is one bill, and one run, per sub-merchant.

Both sides are matched by our references (``out_trade_no``, ``out_refund_no``):

* our side of a day is every WeChat Pay payment that succeeded on it, every
  refund confirmed on it and every refund requested on it that is still pending;
* a bill line without a payment or refund of ours is *missing on our side*;
* a trade of ours for the day absent from its bill is *missing on theirs*,
  unless it was booked within ``BOUNDARY`` of midnight and the previous day's
  bill holds it (our clock books a success when the news arrives);
* amounts are compared with what we received (payments) or asked (refunds);
  statuses with ours (a bill payment is a success; a refund line says
  ``SUCCESS`` or ``PROCESSING``).

The provider calls happen outside any transaction; the run row is locked only
to record the result, so two runs of the job at once only repeat the work.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from commerce.models import BillDifference, BillReconciliation, Payment, Refund
from commerce.payments import base
from commerce.payments.wechatpay import bill as trade_bill
from members.models import Community
from shequn_backend.audit import Actor, audit_record, job_actor
from shequn_backend.calendar import business_day, business_zone, day_bounds

logger = logging.getLogger(__name__)

RECONCILE_ACTOR = job_actor("reconcile_payments")
PROVIDER = "wechatpay"
BILL_READY = time(10, 0)  # a day's bill exists from about 10:00 the next day
BOUNDARY = timedelta(minutes=30)  # how late our clock may book a success after WeChat's
ZERO = Decimal("0.00")
Kind = BillDifference.Kind
Trade = BillDifference.Trade


@dataclass
class _Ours:
    payments: dict[str, Payment]
    refunds: dict[str, Refund]
    count: int = 0
    paid: Decimal = ZERO
    refunded: Decimal = ZERO


def bill_merchants() -> list[str]:
    """The merchants whose bills are reconciled: "" (direct mode) or each sub-merchant (partner mode)."""
    if not base.provider_configured(PROVIDER):
        return []
    if settings.WECHATPAY_MODE != "partner":
        return [""]
    communities = Community.objects.exclude(wechatpay_sub_mchid="").values_list(
        "wechatpay_sub_mchid", flat=True
    )
    used = (
        Payment.objects.filter(provider=PROVIDER)
        .exclude(sub_merchant="")
        .values_list("sub_merchant", flat=True)
    )
    return sorted({*communities, *used.distinct()})


def bill_ready(*, day: date, now: datetime) -> bool:
    """Whether WeChat has made ``day``'s bill by ``now`` (10:00 Asia/Shanghai the next day)."""
    ready = datetime.combine(day + timedelta(days=1), BILL_READY, tzinfo=business_zone())
    return now >= ready


def payments_reconcile(*, now: datetime, actor: Actor = RECONCILE_ACTOR) -> int:
    """The job: reconcile each merchant's recent bill days not done yet. Returns the runs completed.

    Looks back ``WECHATPAY_RECONCILE_DAYS`` days (bills are kept three months);
    a pending run (bill not made yet, download failed) is tried again.
    """
    today = business_day(now)
    days = [today - timedelta(days=back) for back in range(1, settings.WECHATPAY_RECONCILE_DAYS + 1)]
    completed = 0
    for merchant in bill_merchants():
        done = set(
            BillReconciliation.objects.filter(provider=PROVIDER, merchant=merchant, day__in=days)
            .exclude(status=BillReconciliation.Status.PENDING)
            .values_list("day", flat=True)
        )
        for day in sorted(set(days) - done):
            if not bill_ready(day=day, now=now):
                continue
            run = trade_bill_reconcile(day=day, merchant=merchant, now=now, actor=actor)
            completed += run.status != BillReconciliation.Status.PENDING
    return completed


def trade_bill_reconcile(*, day: date, merchant: str = "", now: datetime, actor: Actor) -> BillReconciliation:
    """Download, parse and compare one day's bill of one merchant; store the run and its differences.

    Safe to repeat: a run's result is replaced by the newer one. A bill that
    cannot be had leaves the run pending with the reason (retried later).
    """
    run, _ = BillReconciliation.objects.get_or_create(provider=PROVIDER, day=day, merchant=merchant)
    try:
        bill = trade_bill.fetch_trade_bill(day, merchant)
    except (base.ProviderUnavailable, base.ProviderRefused) as exc:
        logger.warning("Trade bill %s %s not reconciled: %s", day, merchant or "-", exc)
        return _record_failure(run_id=run.pk, error=str(exc), now=now)
    ours = _our_side(day=day, merchant=merchant)
    previous = _PreviousBill(day=day - timedelta(days=1), merchant=merchant)
    differences = _compare(run=run, bill=bill, ours=ours, day=day, merchant=merchant, previous=previous)
    return _record_result(run_id=run.pk, bill=bill, ours=ours, differences=differences, now=now, actor=actor)


def _record_failure(*, run_id: int, error: str, now: datetime) -> BillReconciliation:
    with transaction.atomic():
        run = BillReconciliation.objects.select_for_update().get(pk=run_id)
        run.attempts += 1
        run.last_error = error[:500]
        run.save(update_fields=["attempts", "last_error"])
    return run


def _record_result(
    *,
    run_id: int,
    bill: trade_bill.TradeBill | None,
    ours: _Ours,
    differences: list[BillDifference],
    now: datetime,
    actor: Actor,
) -> BillReconciliation:
    with transaction.atomic():
        run = BillReconciliation.objects.select_for_update().get(pk=run_id)
        before = {"status": run.status, "difference_count": run.difference_count}
        run.bill_exists = bill is not None
        run.their_count = bill.count if bill else 0
        run.their_paid = bill.paid if bill else ZERO
        run.their_refunded = bill.refunded if bill else ZERO
        run.their_fees = bill.fees if bill else ZERO
        run.our_count, run.our_paid, run.our_refunded = ours.count, ours.paid, ours.refunded
        run.difference_count = len(differences)
        run.status = (
            BillReconciliation.Status.DIFFERENCES if differences else BillReconciliation.Status.RECONCILED
        )
        run.attempts += 1
        run.last_error = ""
        run.checked_at = now
        run.save()
        run.differences.all().delete()
        for difference in differences:
            difference.run = run
        BillDifference.objects.bulk_create(differences)
        audit_record(
            actor=actor,
            action="bill.reconciled",
            target=run,
            changes={
                "status": [before["status"], run.status],
                "difference_count": [before["difference_count"], run.difference_count],
            },
            note=f"{run.day} {run.merchant or '-'}",
        )
    return run


def _in_day(field: str, day: date) -> Q:
    start, end = day_bounds(day)
    return Q(**{f"{field}__gte": start, f"{field}__lt": end})


def _payments(merchant: str) -> QuerySet[Payment]:
    payments = Payment.objects.filter(provider=PROVIDER).select_related("order")
    return payments.filter(sub_merchant=merchant) if settings.WECHATPAY_MODE == "partner" else payments


def _refunds(merchant: str) -> QuerySet[Refund]:
    refunds = Refund.objects.filter(provider=PROVIDER).select_related("order")
    if settings.WECHATPAY_MODE == "partner":
        return refunds.filter(payment__sub_merchant=merchant)
    return refunds


def _our_side(*, day: date, merchant: str) -> _Ours:
    paid = Q(status__in=[Payment.Status.SUCCEEDED, Payment.Status.MISMATCH]) & _in_day("succeeded_at", day)
    payments = {payment.reference: payment for payment in _payments(merchant).filter(paid)}
    booked = (Q(status=Refund.Status.SUCCEEDED) & _in_day("confirmed_at", day)) | (
        Q(status=Refund.Status.PENDING) & _in_day("created_at", day)
    )
    refunds = {refund.reference: refund for refund in _refunds(merchant).filter(booked)}
    return _Ours(
        payments=payments,
        refunds=refunds,
        count=len(payments) + len(refunds),
        paid=sum((payment.amount_received for payment in payments.values()), ZERO),
        refunded=sum((refund.amount for refund in refunds.values()), ZERO),
    )


class _PreviousBill:
    """The previous day's bill references, fetched only if a trade near midnight needs them."""

    def __init__(self, *, day: date, merchant: str):
        self.day, self.merchant, self._references = day, merchant, None

    def holds(self, reference: str) -> bool:
        if self._references is None:
            try:
                bill = trade_bill.fetch_trade_bill(self.day, self.merchant)
            except (base.ProviderUnavailable, base.ProviderRefused) as exc:
                logger.info("Previous trade bill %s not read: %s", self.day, exc)
                bill = None
            lines = bill.lines if bill else []
            self._references = {line.out_refund_no or line.out_trade_no for line in lines}
        return reference in self._references


_REFUND_STATUSES = {"SUCCESS": Refund.Status.SUCCEEDED, "PROCESSING": Refund.Status.PENDING}


def _community_of_merchant(merchant: str) -> int | None:
    if not merchant:
        return None
    ids = list(Community.objects.filter(wechatpay_sub_mchid=merchant).values_list("pk", flat=True)[:2])
    return ids[0] if len(ids) == 1 else None


def _difference(kind: str, trade: str, *, line=None, row=None, community_id=None, **values) -> BillDifference:
    """A difference row from a bill line and/or one of our payments or refunds."""
    order = row.order if row is not None else None
    refund = trade == Trade.REFUND
    if line is not None:
        values.setdefault("reference", line.out_refund_no if refund else line.out_trade_no)
        values.setdefault("provider_ref", line.refund_id if refund else line.transaction_id)
        values.setdefault("their_amount", line.refund_amount if refund else line.amount)
        values.setdefault("their_status", line.refund_status if refund else line.trade_state)
        values.setdefault("occurred_at", line.at)
    if row is not None:
        values.setdefault("reference", row.reference)
        values.setdefault("provider_ref", row.provider_ref)
        values.setdefault("our_amount", row.amount if refund else row.amount_received)
        values.setdefault("our_status", row.status)
        values.setdefault("currency", row.currency)
        booked = (row.confirmed_at or row.created_at) if refund else row.succeeded_at
        values.setdefault("occurred_at", booked)
    return BillDifference(
        kind=kind,
        trade=trade,
        order=order,
        community_id=order.community_id if order is not None else community_id,
        **{
            key: value[:64] if key in ("reference", "provider_ref") else value
            for key, value in values.items()
        },
    )


def _compare(
    *,
    run: BillReconciliation,
    bill: trade_bill.TradeBill | None,
    ours: _Ours,
    day: date,
    merchant: str,
    previous: _PreviousBill,
) -> list[BillDifference]:
    differences: dict[tuple[str, str], BillDifference] = {}
    community_id = _community_of_merchant(merchant)
    seen: set[tuple[str, str]] = set()
    for line in bill.lines if bill else []:
        if line.is_refund:
            key = (Trade.REFUND, line.out_refund_no)
            difference = _refund_line(line, ours=ours, merchant=merchant, community_id=community_id)
        else:
            key = (Trade.PAYMENT, line.out_trade_no)
            difference = _payment_line(line, ours=ours, merchant=merchant, community_id=community_id)
        seen.add(key)
        if difference is not None:
            differences.setdefault(key, difference)
    start, _ = day_bounds(day)
    for trade, rows in ((Trade.PAYMENT, ours.payments), (Trade.REFUND, ours.refunds)):
        for reference, row in rows.items():
            if (trade, reference) in seen:
                continue
            booked = (row.confirmed_at or row.created_at) if trade == Trade.REFUND else row.succeeded_at
            if booked < start + BOUNDARY and previous.holds(reference):
                continue
            differences.setdefault((trade, reference), _difference(Kind.MISSING_THEIRS, trade, row=row))
    return list(differences.values())


def _payment_line(line, *, ours: _Ours, merchant: str, community_id) -> BillDifference | None:
    payment = (
        ours.payments.get(line.out_trade_no)
        or _payments(merchant).filter(reference=line.out_trade_no).first()
    )
    if payment is None:
        return _difference(Kind.MISSING_OURS, Trade.PAYMENT, line=line, community_id=community_id)
    if payment.status != Payment.Status.SUCCEEDED or line.trade_state != "SUCCESS":
        return _difference(Kind.STATUS, Trade.PAYMENT, line=line, row=payment)
    if payment.amount_received != line.amount:
        return _difference(Kind.AMOUNT, Trade.PAYMENT, line=line, row=payment)
    return None


def _refund_line(line, *, ours: _Ours, merchant: str, community_id) -> BillDifference | None:
    refund = (
        ours.refunds.get(line.out_refund_no)
        or _refunds(merchant).filter(reference=line.out_refund_no).first()
    )
    if refund is None:
        return _difference(Kind.MISSING_OURS, Trade.REFUND, line=line, community_id=community_id)
    if _REFUND_STATUSES.get(line.refund_status) != refund.status:
        return _difference(Kind.STATUS, Trade.REFUND, line=line, row=refund)
    if refund.amount != line.refund_amount:
        return _difference(Kind.AMOUNT, Trade.REFUND, line=line, row=refund)
    return None
