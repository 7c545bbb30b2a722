"""Not trusting notifications alone: ``run_jobs sync_payments`` asks the providers what happened.

For every provider that can be polled (``pollable``) it

* queries each unpaid payment that exists at the provider (a reference or
  client data is recorded) of an order still waiting for payment, or of one
  cancelled within ``PAYMENT_SYNC_CANCELLED_HOURS``, and applies what it finds
  through the services: a success (a lost notification, or a late payment:
  the stock is taken again if it is there, else the order is flagged for a
  refund), a cancelled or closed payment, a failure;
* closes at the provider each such payment whose hold ended (the order was
  cancelled, paid otherwise, or its hold expired). A close the provider refuses
  (WeChat's ``ORDERPAID``: the member paid meanwhile) is followed by a new
  query, whose success is applied;
* queries each pending refund and applies its state (refund_apply_state, then
  order_refunds_settle), as a refund notification would. A refund whose request
  went unanswered and that the provider does not know, ``UNSENT_GRACE`` after it
  was asked for, is sent again with the same reference and key (``refund_send``:
  the provider makes it once).

Provider calls are made with no lock held; each answer is applied in its own
short transaction under the order's row lock, after reloading the rows, so the
job may run alongside notifications and alongside itself: every effect is
applied once. A provider call that fails is logged and the job goes on.
"""

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from commerce import errors
from commerce.models import Order, Payment, Refund
from commerce.payments import base
from commerce.services.payments import _apply_canceled, _apply_failure, payment_apply_success
from commerce.services.refunds import order_refunds_settle, refund_apply_state, refund_send
from shequn_backend.audit import Actor, job_actor

logger = logging.getLogger(__name__)

SYNC_ACTOR = job_actor("sync_payments")
# What the provider may still turn into a success: closed once the hold ended.
OPEN_AT_PROVIDER = (Payment.Status.CREATING, Payment.Status.PENDING, Payment.Status.FAILED)
PROVIDER_ERRORS = (base.ProviderUnavailable, base.ProviderRefused, errors.PaymentProviderUnavailable)
# A refund the provider does not know this long after it was asked for was never received: sent again.
UNSENT_GRACE = timedelta(minutes=10)


def _pollable(names) -> list[str]:
    pollable = []
    for name in sorted(set(names)):
        if name in base.PROVIDERS and getattr(base.get_provider(name), "pollable", False):
            pollable.append(name)
    return pollable


def payments_to_sync(*, now: datetime) -> list[int]:
    """Unpaid payments known to their provider, of orders unpaid or recently cancelled."""
    since = now - timedelta(hours=settings.PAYMENT_SYNC_CANCELLED_HOURS)
    waiting = Q(order__status=Order.Status.PENDING_PAYMENT, status__in=Payment.LIVE_STATUSES)
    cancelled = Q(
        order__status=Order.Status.CANCELLED,
        order__cancelled_at__gte=since,
        status__in=[*Payment.LIVE_STATUSES, Payment.Status.CANCELED],
    )
    payments = Payment.objects.filter(waiting | cancelled).exclude(client_data={}, provider_ref="")
    providers = _pollable(payments.values_list("provider", flat=True).distinct())
    return list(payments.filter(provider__in=providers).order_by("pk").values_list("pk", flat=True))


def refunds_to_sync() -> list[int]:
    """Refunds still pending at a pollable provider."""
    refunds = Refund.objects.filter(status=Refund.Status.PENDING)
    providers = _pollable(refunds.values_list("provider", flat=True).distinct())
    return list(refunds.filter(provider__in=providers).order_by("pk").values_list("pk", flat=True))


def payments_sync(*, now: datetime, actor: Actor = SYNC_ACTOR) -> int:
    """The job: query, close and apply; returns how many payments and refunds changed."""
    changed = 0
    for payment_id in payments_to_sync(now=now):
        try:
            changed += payment_sync(payment_id=payment_id, now=now, actor=actor)
        except PROVIDER_ERRORS as exc:
            logger.warning("sync_payments: payment %s not synced: %s", payment_id, exc)
    for refund_id in refunds_to_sync():
        try:
            changed += refund_sync(refund_id=refund_id, now=now, actor=actor)
        except PROVIDER_ERRORS as exc:
            logger.warning("sync_payments: refund %s not synced: %s", refund_id, exc)
    return changed


def _hold_ended(order: Order, now: datetime) -> bool:
    if order.status != Order.Status.PENDING_PAYMENT:
        return True
    return order.hold_expires_at is not None and order.hold_expires_at <= now


def payment_sync(*, payment_id: int, now: datetime, actor: Actor) -> bool:
    """Query one payment (closing it if its hold ended) and apply the answer.

    True if anything changed, here or at the provider (a close).
    """
    payment = Payment.objects.select_related("order").get(pk=payment_id)
    provider = base.get_provider(payment.provider)
    handle = base.PaymentHandle.of(payment)
    state, closed = provider.fetch_payment(handle=handle), False
    if state.status in OPEN_AT_PROVIDER and _hold_ended(payment.order, now):
        try:
            provider.close_payment(handle=handle, idempotency_key=f"{payment.idempotency_key}-close")
        except base.ProviderRefused as exc:  # e.g. ORDERPAID: paid meanwhile; ask again
            logger.info("sync_payments: payment %s not closed (%s): querying again", payment_id, exc)
            state = provider.fetch_payment(handle=handle)
        else:
            closed = True
            state = replace(state, status=Payment.Status.CANCELED)
    return _apply_state(payment_id=payment_id, state=state, now=now, actor=actor) or closed


def _apply_state(*, payment_id: int, state: base.ProviderPayment, now: datetime, actor: Actor) -> bool:
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("community", "plan")
            .get(payments__pk=payment_id)
        )
        payment = Payment.objects.get(pk=payment_id)
        before = (order.status, order.needs_review, payment.status)
        if state.status == Payment.Status.SUCCEEDED:
            if state.ref and not payment.provider_ref:  # WeChat Pay: the transaction id, known once paid
                payment.provider_ref = state.ref[:100]
                payment.save(update_fields=["provider_ref", "updated_at"])
            payment_apply_success(
                actor=actor,
                order=order,
                payment=payment,
                amount=state.amount_received,
                currency=state.currency,
                now=now,
            )
        elif state.status == Payment.Status.CANCELED:
            _apply_canceled(actor=actor, order=order, payment=payment)
        elif state.status == Payment.Status.FAILED:
            fact = base.PaymentFailed(
                order_id=order.pk,
                payment_ref=state.ref,
                failure_code="failed",
                failure_message=str(state.raw.get("trade_state_desc") or "")[:500],
            )
            _apply_failure(actor=actor, order=order, payment=payment, fact=fact)
        return (order.status, order.needs_review, payment.status) != before


def refund_sync(*, refund_id: int, now: datetime, actor: Actor) -> bool:
    """Query one pending refund and apply its state (or send an unanswered one again). True if it changed."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    provider = base.get_provider(refund.provider)
    try:
        state = provider.fetch_refund(
            handle=base.PaymentHandle.of(refund.payment),
            refund=base.RefundHandle(reference=refund.reference, ref=refund.provider_ref),
        )
    except base.ProviderRefused:
        if refund.provider_ref or refund.created_at > now - UNSENT_GRACE:
            raise
        logger.info("sync_payments: refund %s unknown to %s: sent again", refund_id, refund.provider)
        sent = refund_send(actor=actor, refund_id=refund_id)
        return (sent.status, sent.provider_ref) != (refund.status, refund.provider_ref)
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).get(pk=refund.order_id)
        refund = Refund.objects.get(pk=refund_id)
        before = (refund.status, refund.provider_ref, refund.failure_reason)
        confirmed = refund_apply_state(actor=actor, order=order, refund=refund, state=state)
        if refund.status != before[0]:
            order_refunds_settle(actor=actor, order=order, confirmed=[refund] if confirmed else [])
        return (refund.status, refund.provider_ref, refund.failure_reason) != before
