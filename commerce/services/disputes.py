"""Disputes (chargebacks and inquiries): money the provider takes back is a refund we did not make.

A dispute is applied from its current state at the provider (fetched before
any lock, see ``webhook_receive``), so its events may come in any order and
any number of times. While the provider holds the disputed money
(``withdrawn``), the order has a ``Refund`` row with source ``dispute`` (its
provider reference is the dispute's id) that has succeeded: it counts in
``Order.amount_refunded`` like any confirmed refund, so ``order_refunds_settle``
takes back points, commissions and an entry's membership in proportion, the
finance reports count it as money out, and lines = total = paid - refunded
keeps reconciling. When the money is reinstated (a dispute won) the row is
cancelled and the same settling restores what it took. Every change of
state flags the order for review with what the owner should do.
"""

from datetime import datetime

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from commerce.models import Order, Payment, Refund
from commerce.payments.base import ProviderDispute
from commerce.pricing import money
from commerce.services.orders import AUDIT_FIELDS, order_audit
from commerce.services.refunds import REFUND_AUDIT_FIELDS, order_refunds_settle
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot


def _advice(*, dispute: ProviderDispute) -> str:
    """What the owner should do now, in words."""
    facts = {
        "ref": dispute.ref,
        "reason": dispute.reason or "-",
        "amount": money(dispute.amount),
        "currency": dispute.currency,
        "due": date_format(dispute.evidence_due_by, "Y-m-d") if dispute.evidence_due_by else "-",
    }
    if dispute.status == "won":
        text = _(
            "Dispute %(ref)s was won: %(amount)s %(currency)s came back, and the points, commissions "
            "and membership it took back are restored. Nothing left to do."
        )
    elif dispute.status == "lost":
        text = _(
            "Dispute %(ref)s was lost: the bank gave %(amount)s %(currency)s back to the customer; its "
            "points, commissions and membership stay reversed. Do not refund this amount again."
        )
    elif dispute.open and dispute.withdrawn:
        text = _(
            "The customer's bank disputes this payment (%(reason)s, dispute %(ref)s): %(amount)s "
            "%(currency)s was taken back and its points, commissions and membership reversed. Submit "
            "evidence in the Stripe dashboard by %(due)s; if the dispute is won they are restored."
        )
    elif dispute.open:
        text = _(
            "The customer's bank asks about this payment (%(reason)s, inquiry %(ref)s); no money was "
            "taken yet. Answer in the Stripe dashboard by %(due)s, or refund the order."
        )
    else:
        text = _("Dispute %(ref)s is closed (%(status)s); no money was taken back.")
        facts["status"] = dispute.status
    return (text % facts)[:500]


def _flag(*, actor: Actor, order: Order, reason: str, raise_flag: bool) -> None:
    """Say what to do on the order; ``raise_flag`` False only rewords a flag already raised.

    A note that already says it (perhaps followed by what settling added) is kept as it is.
    """
    if reason in order.review_reason or not (raise_flag or order.needs_review):
        return
    before = audit_snapshot(order, AUDIT_FIELDS)
    order.needs_review = True
    order.review_reason = reason
    order.save(update_fields=["needs_review", "review_reason", "updated_at"])
    order_audit(actor=actor, action="order.flagged_for_review", order=order, before=before, note=reason)


def _dispute_row(*, order: Order, payment: Payment, dispute: ProviderDispute) -> Refund:
    return Refund.objects.create(
        order=order,
        payment=payment,
        provider=payment.provider,
        provider_ref=dispute.ref[:100],
        amount=dispute.amount,
        currency=dispute.currency or order.currency,
        source=Refund.Source.DISPUTE,
        reason=_("Taken back by a dispute (%(reason)s).") % {"reason": dispute.reason or "-"},
        status=Refund.Status.PENDING,
        raw=dispute.raw,
    )


def dispute_apply_state(
    *, actor: Actor, order: Order, payment: Payment, dispute: ProviderDispute, now: datetime
) -> Refund | None:
    """Apply a dispute's current state to ``order``. Caller holds the order lock; idempotent.

    Returns the dispute's ``Refund`` row (None while no money was ever taken).
    """
    if dispute.payment_ref and payment.provider_ref and dispute.payment_ref != payment.provider_ref:
        return None
    row = Refund.objects.filter(provider=payment.provider, provider_ref=dispute.ref[:100]).first()
    if row is None and dispute.withdrawn and dispute.amount > 0:
        row = _dispute_row(order=order, payment=payment, dispute=dispute)
    confirmed = []
    if row is not None:
        before = audit_snapshot(row, REFUND_AUDIT_FIELDS)
        target = Refund.Status.SUCCEEDED if dispute.withdrawn else Refund.Status.CANCELED
        row.raw = dispute.raw
        if row.status != target:
            row.status = target
            row.confirmed_at = now if target == Refund.Status.SUCCEEDED else row.confirmed_at
            confirmed = [row] if target == Refund.Status.SUCCEEDED else []
        row.save(update_fields=["status", "confirmed_at", "raw", "updated_at"])
        if row.status != before["status"]:
            audit_record(
                actor=actor,
                action="refund.dispute_withdrawn" if confirmed else "refund.dispute_reinstated",
                target=row,
                community_id=order.community_id,
                changes=audit_diff(before, audit_snapshot(row, REFUND_AUDIT_FIELDS)),
                note=dispute.status,
            )
    settled_nothing_taken = not dispute.open and not dispute.withdrawn
    _flag(actor=actor, order=order, reason=_advice(dispute=dispute), raise_flag=not settled_nothing_taken)
    order_refunds_settle(actor=actor, order=order, confirmed=confirmed)  # may add to the note (seats)
    return row
