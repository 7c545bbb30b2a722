"""Starting payments and applying what providers tell us (webhooks), provider-neutrally.

Starting a payment never holds a row lock across the provider call: the
Payment row is written first (with our reference and a random provider
idempotency key), the provider is called outside any transaction, and its
answer is recorded in a second short transaction.

Webhook deliveries are stored raw first (every delivery, counted), then
processed exactly once per event id: the event row is locked and marked
processed in the same transaction as the effects. Effects are written so
that any order of deliveries converges on the same state:

* a success is applied once (a second one is a no-op) and only if amount and
  currency match the order; otherwise the order is flagged for review; a
  failure never undoes a success;
* refund events are not trusted for their (possibly stale) details: they
  trigger a fetch of the payment's and its refunds' current state from the
  provider, done before any lock is taken and applied afterwards. A refund
  reported before the success thus finds the payment succeeded at the
  provider and applies the success first;
* refund statuses only move forward (pending -> succeeded | failed, and
  succeeded -> failed as the provider may report), and their consequences
  are recomputed from totals (see ``order_refunds_settle``).

Every money path takes its row locks in one order: the order row, then SKU
rows (by primary key), then membership rows (by primary key: the buyer's and
the referrers', see ``_lock_memberships``), then the order's commissions.
Order placement (SKUs, then a reference to the referrer's membership) fits
the same order, so payments, refunds and placements queue, never deadlock.
The audience stale flag and every other reaction of trust run after commit.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from commerce import errors
from commerce.events import order_paid_announce
from commerce.models import Order, Payment, Refund, WebhookEvent
from commerce.payments import base
from commerce.pricing import money, points_for
from commerce.services.commissions import commission_create_for_order
from commerce.services.coupons import coupon_mark_used
from commerce.services.disputes import dispute_apply_state
from commerce.services.order_states import STATE_FIELDS, set_payment_status
from commerce.services.orders import AUDIT_FIELDS, order_audit
from commerce.services.refunds import order_refunds_settle, refund_apply_state
from commerce.services.shipping_info import shipping_info_after_payment
from commerce.services.stock import stock_take_back
from commerce.services.tickets import ticket_issue_for_order
from commerce.services.withdrawals import withdrawal_apply_transfer
from members.models import Membership
from members.services.memberships import membership_activate_paid
from members.services.points import points_award
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot
from shequn_backend.sql import prepared_cursor

logger = logging.getLogger(__name__)


class WebhookNotReady(errors.ApplicationError):
    """The event names one of our orders whose payment reference is not recorded yet: retry later."""

    code = "webhook_not_ready"
    message = _lazy("The payment this event is about is still being recorded. Deliver it again later.")
    http_status = 409


def payment_summary(payment: Payment | None) -> dict | None:
    """The contract's ``<payment>``: what the mini-program needs to let the customer pay.

    ``client_secret`` (Stripe) or ``request_payment`` (WeChat Pay, signed anew
    on every call) while the payment waits for the customer; null otherwise.
    """
    if payment is None or payment.provider == "free":
        return None
    client = {"client_secret": None, "request_payment": None}
    waiting = payment.status in (Payment.Status.PENDING, Payment.Status.FAILED)
    if waiting and payment.client_data:
        provider = base.get_provider(payment.provider)
        client |= provider.client_payload(handle=base.PaymentHandle.of(payment), client=payment.client_data)
    return {
        "order_id": payment.order_id,
        "provider": payment.provider,
        "status": payment.status,
        "amount": money(payment.amount),
        "currency": payment.currency,
        **client,
    }


def _payer(*, buyer, provider: base.PaymentProvider) -> base.Payer:
    """Who pays, as the provider needs it; ``WechatBindingRequired`` (409) when WeChat Pay lacks an openid."""
    if provider.needs_wechat_identity and not buyer.wechat_openid:
        raise errors.WechatBindingRequired()
    return base.Payer(user_id=buyer.pk, wechat_openid=buyer.wechat_openid)


def _lacks_sub_merchant(*, community, provider_name: str) -> bool:
    """Partner mode: WeChat Pay needs the community's sub-merchant, where its takings land."""
    return (
        provider_name == "wechatpay"
        and settings.WECHATPAY_MODE == "partner"
        and not community.wechatpay_sub_mchid
    )


def payment_provider_choose(*, community, requested: str | None = None) -> str:
    """The provider a payment goes to: the member's choice if offered, else the community's default.

    In WeChat Pay partner mode a community without a sub-merchant cannot take
    WeChat Pay: asking for it is ``409 wechatpay_sub_merchant_missing``, and the
    default skips it (the same 409 if nothing else is configured).
    """
    if requested:
        if requested not in base.ONLINE_PROVIDERS or not base.provider_configured(requested):
            raise errors.PaymentProviderNotOffered()
        if _lacks_sub_merchant(community=community, provider_name=requested):
            raise errors.WechatPaySubMerchantMissing()
        return requested
    skip = ("wechatpay",) if _lacks_sub_merchant(community=community, provider_name="wechatpay") else ()
    try:
        return base.default_provider(community.payment_provider, skip=skip)
    except base.ProviderUnavailable as exc:
        logger.warning("Payment refused: %s", exc)
        if skip and base.provider_configured("wechatpay"):
            raise errors.WechatPaySubMerchantMissing() from exc
        raise errors.PaymentProviderUnavailable() from exc


def payment_precheck(*, community, buyer, provider_name: str | None = None) -> str:
    """Refuse, before anything is written, a payment that could not start: a provider not
    offered (400) or WeChat Pay for an account without WeChat (409). Returns the provider."""
    name = payment_provider_choose(community=community, requested=provider_name)
    _payer(buyer=buyer, provider=base.get_provider(name))
    return name


def payment_amount_check(*, provider_name: str, amount: Decimal, currency: str) -> None:
    """Refuse (400 ``amount_below_minimum``), before anything is sent, an amount the provider never takes."""
    minimum = getattr(base.get_provider(provider_name), "minimum_amount", None)
    if minimum is None or amount <= 0:
        return
    least = minimum(currency)
    if amount < least:
        raise errors.AmountBelowMinimum(
            _("Payments by this method start at %(minimum)s %(currency)s; this one is %(amount)s.")
            % {"minimum": money(least), "currency": currency.upper(), "amount": money(amount)}
        )


def _rotate_key(*, payment: Payment) -> Payment:
    """The provider saved its answer under the attempt's key (Stripe replays a 500 for 24 h):
    the next try of this attempt goes under a fresh one (unless a concurrent try changed it already)."""
    rotated = Payment.objects.filter(
        pk=payment.pk, status=Payment.Status.CREATING, idempotency_key=payment.idempotency_key
    ).update(idempotency_key=uuid.uuid4(), updated_at=timezone.now())
    if rotated:
        logger.info(
            "Payment %s: the provider kept its answer under the key; the next try uses a new one.", payment.pk
        )
    return Payment.objects.get(pk=payment.pk)


def _create_at_provider(
    *, provider: base.PaymentProvider, payment: Payment, order: Order, payer: base.Payer
) -> base.ProviderPayment:
    """Create the attempt at the provider within one deadline; after a saved 5xx, once more under a
    fresh key. A refusal the provider saved also leaves a fresh key for the next call."""
    with base.provider_deadline():
        for last in (False, True):
            try:
                return provider.create_payment(
                    handle=base.PaymentHandle.of(payment),
                    order_id=order.pk,
                    payer=payer,
                    description=f"{order.community.name} #{order.pk}",
                    expires_at=order.hold_expires_at,
                    idempotency_key=str(payment.idempotency_key),
                )
            except (base.ProviderUnavailable, base.ProviderRefused) as exc:
                if not exc.key_spent:
                    raise
                payment = _rotate_key(payment=payment)
                if last or isinstance(exc, base.ProviderRefused):
                    raise
    raise AssertionError("unreachable")


def _sub_merchant(*, community, provider_name: str) -> str:
    if provider_name == "wechatpay" and settings.WECHATPAY_MODE == "partner":
        return community.wechatpay_sub_mchid
    return ""


def payment_start(*, order_id: int, provider_name: str | None = None) -> Payment:
    """Create the order's payment at the provider (once) and return it with its client data.

    Safe to call again: the live attempt at that provider is returned without a
    call; an attempt whose creation failed (still ``creating``: no answer, a
    timeout, an error) is retried by the next call; after a cancelled or
    closed attempt a new one (new reference, new key) is made. The provider
    call is bounded by ``PAYMENT_PROVIDER_TIMEOUT_SECONDS`` in all.

    Keys: a try that got no answer is repeated under the same key (the
    provider answers what it did the first time). One whose answer the
    provider saved (Stripe keeps a 500 or a refusal under the key and replays
    it for 24 h) is repeated under a fresh key. If that saved 500 had in fact
    created a PaymentIntent, it stays an orphan: nobody ever received its
    client secret, so it cannot be paid, and events about it do not match our
    attempt (its provider reference differs). We do not search for it first:
    Stripe's search is eventually consistent, so it could not rule one out.

    Raises ``AmountBelowMinimum`` (400) for an amount the provider never
    takes, ``WechatBindingRequired`` (409) for a WeChat Pay payer without an
    openid and ``PaymentProviderUnavailable`` (503, or 502 when the provider
    refused); the order then stays ``pending_payment`` with its stock held
    until its hold expires, and the same call may be retried.
    """
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("community", "buyer")
            .get(pk=order_id)
        )
        name = payment_provider_choose(community=order.community, requested=provider_name)
        provider = base.get_provider(name)
        live = order.payments.filter(provider=name, status__in=Payment.LIVE_STATUSES)
        payment = live.order_by("-pk").first()
        if order.status != Order.Status.PENDING_PAYMENT:
            return payment or order.payments.order_by("-pk").first()
        payer = _payer(buyer=order.buyer, provider=provider)
        if payment is None or payment.status == Payment.Status.CREATING:
            payment_amount_check(provider_name=name, amount=order.total, currency=order.currency)
        if payment is None:
            payment = Payment.objects.create(
                order=order,
                provider=name,
                amount=order.total,
                currency=order.currency,
                sub_merchant=_sub_merchant(community=order.community, provider_name=name),
            )
        if payment.status != Payment.Status.CREATING:
            return payment
    return _send(provider=provider, payment=payment, order=order, payer=payer)


def payment_attempt_build(*, order: Order, provider_name: str) -> Payment | None:
    """A new order's first payment attempt (``creating``), unsaved: the order's writer inserts it
    with the order, so that ``payment_send_first`` needs no transaction of its own before the
    provider call. None when the provider never takes the amount: the checkout's
    ``payment_start`` then refuses it (``AmountBelowMinimum``).
    """
    try:
        payment_amount_check(provider_name=provider_name, amount=order.total, currency=order.currency)
    except errors.AmountBelowMinimum:
        return None
    return Payment(
        order=order,
        provider=provider_name,
        amount=order.total,
        currency=order.currency,
        sub_merchant=_sub_merchant(community=order.community, provider_name=provider_name),
    )


def payment_send_first(*, order: Order, payment: Payment) -> Payment:
    """Create at the provider the attempt written with ``order`` (``payment_attempt_build``, just committed).

    The same as ``payment_start`` without its first transaction: nobody else
    knew of the order yet. Raises what ``payment_start`` raises.
    """
    provider = base.get_provider(payment.provider)
    return _send(
        provider=provider, payment=payment, order=order, payer=_payer(buyer=order.buyer, provider=provider)
    )


def _send(*, provider: base.PaymentProvider, payment: Payment, order: Order, payer: base.Payer) -> Payment:
    """Create the attempt at the provider (no transaction open, no lock held) and record the answer."""
    try:
        result = _create_at_provider(provider=provider, payment=payment, order=order, payer=payer)
    except (base.ProviderUnavailable, base.ProviderRefused) as exc:
        logger.warning("Payment for order %s not created: %s", order.pk, exc)
        if isinstance(exc, base.ProviderRefused) and exc.code == "amount_too_small":
            raise errors.AmountBelowMinimum() from exc
        status = 503 if isinstance(exc, base.ProviderUnavailable) else 502
        raise errors.PaymentProviderUnavailable(http_status=status) from exc
    return _record_created(order_id=order.pk, payment=payment, result=result)


_RECORD_IF_UNTOUCHED = (
    "UPDATE commerce_payment SET provider_ref = %s, client_data = %s, raw = %s, status = %s, updated_at = %s"
    " WHERE id = %s AND status = %s AND provider_ref = '' AND idempotency_key = %s"
)


def _record_if_untouched(*, payment: Payment, result: base.ProviderPayment, now) -> int:
    """``_record_created``'s conditional UPDATE; on PostgreSQL as fixed SQL (it runs on every checkout)."""
    untouched = {
        "pk": payment.pk,
        "status": Payment.Status.CREATING,
        "provider_ref": "",
        "idempotency_key": payment.idempotency_key,
    }
    values = {
        "provider_ref": result.ref,
        "client_data": result.client,
        "raw": result.raw,
        "status": Payment.Status.PENDING,
        "updated_at": now,
    }
    if connection.vendor != "postgresql":
        return Payment.objects.filter(**untouched).update(**values)
    field = Payment._meta.get_field
    params = [field(name).get_db_prep_value(value, connection) for name, value in values.items()]
    params += [payment.pk, Payment.Status.CREATING, payment.idempotency_key]
    with prepared_cursor() as cursor:
        cursor.execute(_RECORD_IF_UNTOUCHED, params)
        return cursor.rowcount


def _record_created(*, order_id: int, payment: Payment, result: base.ProviderPayment) -> Payment:
    """Record the provider's answer on the attempt: it is now ``pending``, its client data kept.

    One conditional UPDATE when the row is as we left it (``creating``, no
    provider reference, the same key): nothing else touched it, and the UPDATE
    itself waits for anyone who does. Otherwise (a webhook, a cancel or a key
    rotation got there first) under the order's lock as any payment change,
    never undoing a later status.
    """
    now = timezone.now()
    if _record_if_untouched(payment=payment, result=result, now=now):
        payment.provider_ref, payment.client_data, payment.raw = result.ref, result.client, result.raw
        payment.status, payment.updated_at = Payment.Status.PENDING, now
        return payment
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=order_id)
        payment = Payment.objects.get(pk=payment.pk)
        payment.provider_ref = payment.provider_ref or result.ref
        payment.client_data = result.client
        payment.raw = result.raw
        if payment.status == Payment.Status.CREATING:
            payment.status = Payment.Status.PENDING
        payment.save(update_fields=["provider_ref", "client_data", "raw", "status", "updated_at"])
    return payment


def payment_refresh(*, actor: Actor, order_id: int) -> Payment:
    """The payment the buyer can pay now for their unpaid order (``GET /orders/{id}/payment/``).

    The caller checked that ``actor`` is the buyer. ``NothingToPay`` (409) for an
    order not waiting for a payment (paid, cancelled, or its hold ended). The live
    attempt is returned, its client part renewed when the provider says it is
    about to lapse (a WeChat Pay prepay id lives 2 hours: the identical prepay is
    repeated). After a cancelled or closed attempt, or one the provider will not
    renew, a new attempt is started at the same provider; one the provider reports
    paid is applied (and then there is nothing to pay). Every provider call shares one deadline.
    """
    with base.provider_deadline():
        return _payment_refresh(actor=actor, order_id=order_id)


def _payment_refresh(*, actor: Actor, order_id: int) -> Payment:
    order = Order.objects.get(pk=order_id)
    if order.status != Order.Status.PENDING_PAYMENT or (
        order.hold_expires_at is not None and order.hold_expires_at <= timezone.now()
    ):
        raise errors.NothingToPay()
    attempts = order.payments.exclude(provider__in=["free", "offline"]).order_by("-pk")
    payment = attempts.filter(status__in=Payment.LIVE_STATUSES).first()
    if payment is None or payment.status == Payment.Status.CREATING:
        last = payment or attempts.first()
        return payment_start(order_id=order.pk, provider_name=last.provider if last else None)
    renew = getattr(base.get_provider(payment.provider), "renew_client", None)
    if renew is None or not payment.client_data:
        return payment
    try:
        client = renew(handle=base.PaymentHandle.of(payment), client=payment.client_data, raw=payment.raw)
    except base.ProviderUnavailable as exc:
        logger.warning("Payment %s not renewed: %s", payment.pk, exc)
        raise errors.PaymentProviderUnavailable() from exc
    except base.ProviderRefused as exc:
        logger.info("Payment %s not renewed (%s): replaced", payment.pk, exc)
        return _payment_replace(actor=actor, payment=payment)
    if client is None:
        return payment
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=order_id)
        payment = Payment.objects.get(pk=payment.pk)
        if payment.status in Payment.LIVE_STATUSES:
            payment.client_data = client
            payment.save(update_fields=["client_data", "updated_at"])
    return payment


def _payment_replace(*, actor: Actor, payment: Payment) -> Payment:
    """An attempt the provider will not renew: apply its success if it was paid, else close it
    and start a new one (new reference) at the same provider."""
    provider = base.get_provider(payment.provider)
    handle = base.PaymentHandle.of(payment)
    try:
        state = provider.fetch_payment(handle=handle)
    except base.ProviderRefused:
        state = None  # the provider never had it
    except base.ProviderUnavailable as exc:
        raise errors.PaymentProviderUnavailable() from exc
    if state is not None and state.status == Payment.Status.SUCCEEDED:
        fact = base.PaymentSucceeded(
            order_id=None,
            payment_ref=state.ref,
            amount=state.amount_received,
            currency=state.currency,
            payment_reference=payment.reference,
        )
        with transaction.atomic(durable=True):
            _apply_fact(
                actor=base.provider_actor(payment.provider),
                payment=payment,
                fact=fact,
                snapshot=None,
                now=timezone.now(),
            )
        raise errors.NothingToPay()
    try:
        provider.close_payment(handle=handle, idempotency_key=f"{payment.idempotency_key}-close")
    except (base.ProviderUnavailable, base.ProviderRefused) as exc:  # ORDERPAID: its notification follows
        status = 503 if isinstance(exc, base.ProviderUnavailable) else 502
        raise errors.PaymentProviderUnavailable(http_status=status) from exc
    with transaction.atomic(durable=True):
        order = Order.objects.select_for_update(of=("self",)).get(pk=payment.order_id)
        _apply_canceled(actor=actor, order=order, payment=Payment.objects.get(pk=payment.pk))
    return payment_start(order_id=payment.order_id, provider_name=payment.provider)


# --- Applying facts (the caller holds the order's row lock) ------------------------------------


def _award_points(*, actor: Actor, order: Order, membership_id: int | None) -> None:
    """Points for goods and tickets bought (entry fees buy membership, not points)."""
    if order.kind == Order.Kind.ENTRY:
        return
    points = points_for(amount=order.amount_paid, points_per_yuan=order.community.points_per_yuan)
    if membership_id is None or points <= 0:
        return
    points_award(
        membership_id=membership_id,
        delta=points,
        reason=_("Purchase: order #%(id)s") % {"id": order.pk},
        idempotency_key=f"order:{order.pk}:award",
        actor=actor,
    )


def _lock_memberships(*, order: Order) -> int | None:
    """Lock, in primary-key order, every membership the payment writes or references.

    Points lock the buyer's membership; commissions reference the referrers'
    (a foreign key takes ``FOR KEY SHARE``). Two members who referred each
    other, paying at once, would each hold their own row and wait for the
    other's: locking the whole set in one fixed order makes them queue instead.
    Returns the buyer's membership id (None if they have none in the community).
    """
    buyer = (
        Membership.objects.filter(user_id=order.buyer_id, community_id=order.community_id)
        .values_list("pk", "referred_by_id")
        .first()
    )
    ids = {order.membership_id, order.referrer_id}
    if buyer is not None:
        ids |= {buyer[0], buyer[1]}
    level1 = order.referrer_id or (buyer[1] if buyer else None)
    if level1:
        ids.add(Membership.objects.filter(pk=level1).values_list("referred_by_id", flat=True).first())
    ids.discard(None)
    list(Membership.objects.select_for_update().filter(pk__in=sorted(ids)).order_by("pk").values_list("pk"))
    return buyer[0] if buyer is not None else None


def _flag_for_review(*, actor: Actor, order: Order, reason: str) -> None:
    before = audit_snapshot(order, AUDIT_FIELDS)
    order.needs_review = True
    order.review_reason = reason[:500]
    order.save(update_fields=["needs_review", "review_reason", "updated_at"])
    order_audit(actor=actor, action="order.flagged_for_review", order=order, before=before, note=reason)


def payment_apply_success(
    *, actor: Actor, order: Order, payment: Payment, amount: Decimal, currency: str, now: datetime
) -> Order:
    """Mark ``order`` paid by ``payment`` if the amount and currency match; once only.

    A mismatch flags the order for review and leaves it unpaid. A payment
    that arrives after the order was cancelled takes its stock again if there
    is enough; otherwise the order is paid but flagged for review (refund it).
    Activates or renews the membership of an entry order, awards points, and
    applies any refunds the provider confirmed before this news arrived.
    """
    if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.MISMATCH):
        return order
    payment.amount_received = amount
    if currency.upper() != order.currency or amount != order.total:
        payment.status = Payment.Status.MISMATCH
        payment.save(update_fields=["status", "amount_received", "updated_at"])
        _flag_for_review(
            actor=actor,
            order=order,
            reason=_("Payment %(ref)s received %(amount)s %(currency)s; the order is %(total)s %(own)s.")
            % {
                "ref": payment.provider_ref,
                "amount": money(amount),
                "currency": currency.upper(),
                "total": money(order.total),
                "own": order.currency,
            },
        )
        return order
    if order.payment_status == Order.PaymentStatus.CANCELLED and not stock_take_back(order=order):
        _flag_for_review(
            actor=actor,
            order=order,
            reason=_("Paid after the order was cancelled and the stock is gone: refund it."),
        )
    elif order.payment_status not in (Order.PaymentStatus.UNPAID, Order.PaymentStatus.CANCELLED):
        _flag_for_review(
            actor=actor, order=order, reason=_("A second payment arrived for an order already paid.")
        )
        payment.status = Payment.Status.MISMATCH
        payment.save(update_fields=["status", "amount_received", "updated_at"])
        return order
    payment.status = Payment.Status.SUCCEEDED
    payment.succeeded_at = now
    payment.save(update_fields=["status", "amount_received", "succeeded_at", "updated_at"])
    before = audit_snapshot(order, AUDIT_FIELDS)
    set_payment_status(order, Order.PaymentStatus.PAID)
    order.amount_paid = amount
    order.paid_at = now
    order.hold_expires_at = None
    order.save(update_fields=[*STATE_FIELDS, "amount_paid", "paid_at", "hold_expires_at", "updated_at"])
    order_audit(actor=actor, action="order.paid", order=order, before=before, note=payment.provider)
    if not coupon_mark_used(order=order, now=now):
        _flag_for_review(
            actor=actor,
            order=order,
            reason=_(
                "Paid after the order was cancelled and its coupon went to another order: check the discount."
            ),
        )
    order_paid_announce(order=order)
    shipping_info_after_payment(order=order)
    buyer_membership_id = _lock_memberships(order=order)
    if order.kind == Order.Kind.ENTRY and order.membership_id and order.plan_id:
        membership_activate_paid(membership_id=order.membership_id, plan=order.plan, paid_at=now, actor=actor)
    _award_points(actor=actor, order=order, membership_id=buyer_membership_id)
    commission_create_for_order(order=order, now=now, actor=actor)
    ticket_issue_for_order(actor=actor, order=order)
    order_refunds_settle(
        actor=actor, order=order
    )  # also reverses commissions for refunds confirmed before this news
    return order


def _apply_failure(*, actor: Actor, order: Order, payment: Payment, fact: base.PaymentFailed) -> None:
    """Record a failed attempt; the order stays payable (the customer may try another method)."""
    if payment.status in (Payment.Status.CREATING, Payment.Status.PENDING, Payment.Status.FAILED):
        fields = ["status", "failure_code", "failure_message"]
        before = audit_snapshot(payment, fields)
        payment.status = Payment.Status.FAILED
        payment.failure_code = fact.failure_code[:100]
        payment.failure_message = fact.failure_message[:500]
        payment.save(update_fields=[*fields, "updated_at"])
        audit_record(
            actor=actor,
            action="payment.failed",
            target=payment,
            community_id=order.community_id,
            changes=audit_diff(before, audit_snapshot(payment, fields)),
        )


def _refund_for_state(*, order: Order, payment: Payment, state: base.ProviderRefund) -> Refund:
    """Our row for a provider refund: by reference, by our id echoed back, or a new one (made there)."""
    refund = None
    if state.ref:
        refund = Refund.objects.filter(provider=payment.provider, provider_ref=state.ref).first()
    if refund is None and state.reference:
        refund = Refund.objects.filter(reference=state.reference, order=order).first()
    if refund is None and state.local_id:
        refund = Refund.objects.filter(pk=state.local_id, order=order, provider_ref="").first()
    if refund is None:
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            provider=payment.provider,
            provider_ref=state.ref,
            amount=state.amount,
            currency=state.currency or order.currency,
            source=Refund.Source.PROVIDER,
            reason=_("Refunded at the payment provider."),
            status=Refund.Status.PENDING,
        )
    return refund


@dataclass(frozen=True)
class ProviderSnapshot:
    """The provider's current state of a payment and its refunds, fetched before any lock is taken."""

    payment: base.ProviderPayment
    refunds: list[base.ProviderRefund]
    dispute: base.ProviderDispute | None = None


def _apply_snapshot(
    *, actor: Actor, order: Order, payment: Payment, snapshot: ProviderSnapshot, now: datetime
) -> None:
    """Apply the provider's current state: the success first (refunds prove it), then each refund."""
    if snapshot.payment.status == Payment.Status.SUCCEEDED:
        payment_apply_success(
            actor=actor,
            order=order,
            payment=payment,
            amount=snapshot.payment.amount_received,
            currency=snapshot.payment.currency,
            now=now,
        )
    confirmed = []
    for state in sorted(snapshot.refunds, key=lambda refund: refund.ref):
        refund = _refund_for_state(order=order, payment=payment, state=state)
        if refund_apply_state(actor=actor, order=order, refund=refund, state=state):
            confirmed.append(refund)
    order_refunds_settle(actor=actor, order=order, confirmed=confirmed)


def _payment_for_fact(*, provider: str, fact: base.Fact) -> Payment | None:
    """Our payment the fact is about, or None if it is not ours (a shared provider account)."""
    payment = None
    if fact.payment_ref:
        payment = Payment.objects.filter(provider=provider, provider_ref=fact.payment_ref).first()
    if payment is None and fact.payment_reference:
        payment = Payment.objects.filter(provider=provider, reference=fact.payment_reference).first()
        known_at_creation = getattr(base.get_provider(provider), "refs_known_at_creation", False)
        if payment is not None and known_at_creation and payment.provider_ref and fact.payment_ref:
            # Our reference on another provider payment: an orphan of a retried creation, not ours.
            return None
    order_id = getattr(fact, "order_id", None)
    if payment is not None or order_id is None or not fact.payment_ref:
        return payment
    unrecorded = Payment.objects.filter(provider=provider, order_id=order_id, provider_ref="")
    if unrecorded.filter(status=Payment.Status.CREATING).exists():
        raise WebhookNotReady()
    return None


def _apply_canceled(*, actor: Actor, order: Order, payment: Payment) -> None:
    """The provider cancelled or closed the attempt: it is over; the next one is a new payment."""
    if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.MISMATCH, Payment.Status.CANCELED):
        return
    before = audit_snapshot(payment, ["status"])
    payment.status = Payment.Status.CANCELED
    payment.save(update_fields=["status", "updated_at"])
    audit_record(
        actor=actor,
        action="payment.canceled",
        target=payment,
        community_id=order.community_id,
        changes=audit_diff(before, audit_snapshot(payment, ["status"])),
    )


def _apply_fact(
    *, actor: Actor, payment: Payment, fact: base.Fact, snapshot: ProviderSnapshot | None, now: datetime
) -> Order:
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("community", "plan")
        .get(pk=payment.order_id)
    )
    payment = Payment.objects.get(pk=payment.pk)
    if fact.payment_ref and not payment.provider_ref:  # WeChat Pay: the transaction id, known once paid
        payment.provider_ref = fact.payment_ref[:100]
        payment.save(update_fields=["provider_ref", "updated_at"])
    if isinstance(fact, base.PaymentSucceeded):
        payment_apply_success(
            actor=actor, order=order, payment=payment, amount=fact.amount, currency=fact.currency, now=now
        )
    elif isinstance(fact, base.PaymentFailed):
        _apply_failure(actor=actor, order=order, payment=payment, fact=fact)
    elif isinstance(fact, base.PaymentCanceled):
        _apply_canceled(actor=actor, order=order, payment=payment)
    elif isinstance(fact, base.RefundSettled):
        refund = _refund_for_state(order=order, payment=payment, state=fact.refund)
        confirmed = refund_apply_state(actor=actor, order=order, refund=refund, state=fact.refund)
        order_refunds_settle(actor=actor, order=order, confirmed=[refund] if confirmed else [])
    elif isinstance(fact, base.RefundsChanged) and snapshot is not None:
        _apply_snapshot(actor=actor, order=order, payment=payment, snapshot=snapshot, now=now)
    elif isinstance(fact, base.DisputeChanged) and snapshot is not None and snapshot.dispute is not None:
        _apply_snapshot(actor=actor, order=order, payment=payment, snapshot=snapshot, now=now)
        dispute_apply_state(actor=actor, order=order, payment=payment, dispute=snapshot.dispute, now=now)
    return order


def provider_snapshot(*, payment: Payment, dispute_ref: str = "") -> ProviderSnapshot:
    """Fetch the payment's, its refunds' (and a dispute's) current state at the provider.

    Hold no lock meanwhile; all the calls together stay within one provider deadline.
    """
    provider = base.get_provider(payment.provider)
    handle = base.PaymentHandle.of(payment)
    known = [
        base.RefundHandle(reference=r.reference, ref=r.provider_ref)
        for r in payment.refunds.exclude(source=Refund.Source.DISPUTE)
    ]
    with base.provider_deadline():
        return ProviderSnapshot(
            payment=provider.fetch_payment(handle=handle),
            refunds=provider.fetch_refunds(handle=handle, known=known),
            dispute=provider.fetch_dispute(handle=handle, dispute_ref=dispute_ref) if dispute_ref else None,
        )


def webhook_receive(*, provider_name: str, payload: bytes, headers) -> WebhookEvent:
    """Verify, store and process one webhook delivery. Each event id takes effect exactly once.

    Every delivery is stored (and counted) in its own transaction first. The
    effects are applied in a second one that locks the event row and marks it
    processed, so duplicate deliveries, even concurrent ones, do nothing more.
    Raises ``InvalidWebhook`` for bad signatures or payloads (nothing stored),
    ``WebhookNotReady`` or ``PaymentProviderUnavailable`` when the provider
    should deliver again later (the event stays unprocessed).
    """
    provider = base.get_provider(provider_name)
    delivery = provider.parse_webhook(payload=payload, headers=headers)
    with transaction.atomic():
        event, created = WebhookEvent.objects.get_or_create(
            provider=provider.name,
            event_id=delivery.event_id[:100],
            defaults={"type": delivery.type[:100], "payload": delivery.payload},
        )
        if not created:
            WebhookEvent.objects.filter(pk=event.pk).update(
                delivery_count=F("delivery_count") + 1, last_delivered_at=timezone.now()
            )
    if event.processed_at is not None:
        return event
    fact = delivery.fact
    if isinstance(fact, base.TransferFinished):
        return _transfer_event_apply(event=event, provider_name=provider.name, fact=fact)
    payment = _payment_for_fact(provider=provider.name, fact=fact) if fact is not None else None
    snapshot = None
    if payment is not None and isinstance(fact, base.RefundsChanged | base.DisputeChanged):
        try:  # no lock is held during these calls
            snapshot = provider_snapshot(payment=payment, dispute_ref=getattr(fact, "dispute_ref", ""))
        except (base.ProviderUnavailable, base.ProviderRefused) as exc:
            logger.warning("Webhook %s: provider state not fetched: %s", delivery.event_id, exc)
            raise errors.PaymentProviderUnavailable() from exc
    with transaction.atomic(durable=True):
        event = WebhookEvent.objects.select_for_update().get(pk=event.pk)
        if event.processed_at is not None:
            return event
        now = timezone.now()
        order = None
        if payment is not None:
            actor = base.provider_actor(provider.name)
            order = _apply_fact(actor=actor, payment=payment, fact=fact, snapshot=snapshot, now=now)
        event.order = order
        event.outcome = WebhookEvent.Outcome.APPLIED if order is not None else WebhookEvent.Outcome.IGNORED
        event.processed_at = now
        event.save(update_fields=["order", "outcome", "processed_at"])
    return event


def _transfer_event_apply(
    *, event: WebhookEvent, provider_name: str, fact: base.TransferFinished
) -> WebhookEvent:
    """A merchant transfer's final state (a withdrawal's payout), applied with the event, once."""
    with transaction.atomic(durable=True):
        event = WebhookEvent.objects.select_for_update().get(pk=event.pk)
        if event.processed_at is not None:
            return event
        withdrawal = withdrawal_apply_transfer(actor=base.provider_actor(provider_name), state=fact.transfer)
        event.outcome = (
            WebhookEvent.Outcome.APPLIED if withdrawal is not None else WebhookEvent.Outcome.IGNORED
        )
        event.processed_at = timezone.now()
        event.save(update_fields=["outcome", "processed_at"])
    return event


def payment_settle_offline(*, actor: Actor, order: Order, reference: str, now: datetime) -> Order:
    """Record ``order`` as paid in full outside any provider. Caller holds the order's row lock."""
    payment, created = Payment.objects.get_or_create(
        order=order,
        provider="offline",
        defaults={"amount": order.total, "currency": order.currency, "provider_ref": reference[:100]},
    )
    if created:
        audit_record(
            actor=actor,
            action="payment.offline_recorded",
            target=payment,
            community_id=order.community_id,
            changes={"amount": [None, payment.amount], "provider_ref": [None, payment.provider_ref]},
        )
    return payment_apply_success(
        actor=actor, order=order, payment=payment, amount=order.total, currency=order.currency, now=now
    )


def payment_record_offline(
    *, actor: Actor, order_id: int, reference: str, now: datetime | None = None
) -> Order:
    """Record that ``order`` was paid in full outside any online provider (cash, transfer, a free plan).

    Staff only; the caller checks permission. Goes through the same path as an
    online success: membership activation, points, review on a cancelled order.
    Idempotent: a second call finds the payment already applied.
    """
    with transaction.atomic(durable=True):
        order = (
            Order.objects.select_for_update(of=("self",)).select_related("community", "plan").get(pk=order_id)
        )
        return payment_settle_offline(
            actor=actor, order=order, reference=reference, now=now or timezone.now()
        )


def payment_cancel_at_provider(*, order_id: int) -> bool:
    """Best effort: close the provider payments of a cancelled order. A later success is still handled.

    Returns True if the provider closed them. Errors are logged, not raised:
    a payment that goes through anyway is applied as a late payment.
    """
    payments = (
        Payment.objects.filter(order_id=order_id, status=Payment.Status.CANCELED)
        .exclude(provider__in=["free", "offline"])
        .exclude(client_data={}, provider_ref="")
    )
    closed = False
    with base.provider_deadline():  # all of them together, within one budget
        for payment in payments:
            try:
                base.get_provider(payment.provider).close_payment(
                    handle=base.PaymentHandle.of(payment), idempotency_key=f"{payment.idempotency_key}-close"
                )
            except (base.ProviderUnavailable, base.ProviderRefused) as exc:
                logger.info(
                    "Payment %s of order %s not closed at the provider: %s", payment.pk, order_id, exc
                )
                continue
            closed = True
    return closed
