"""Referral commissions: created when an order is paid, reversed with its refunds, settled by a job.

Rules (issue 7): level 1 is the member whose referral code the order
carries, else the buyer's own ``referred_by``; level 2 is level 1's
``referred_by``; never deeper. Nothing on one's own purchase, nothing to a
banned referrer, nothing on entry fees unless the community enables it.

Only settled money reaches the beneficiary's ledger (``CommissionEntry``);
a refund after settlement writes a negative adjustment there, so a reversal
after payout leaves a negative balance that later settlements pay off.
Every write is idempotent: one commission per (order, level), one ledger
entry per idempotency key.
"""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import AfterSale, Commission, CommissionEntry, Order
from members.models import Membership
from shequn_backend.audit import (
    SYSTEM,
    Actor,
    audit_diff,
    audit_record,
    audit_record_many,
    audit_snapshot,
    job_actor,
)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DEFAULT_RETURN_WINDOW_DAYS = 7


def commission_amount(*, base: Decimal, percent: Decimal) -> Decimal:
    """``base * percent / 100`` in yuan, rounded half up to the fen."""
    return (base * percent / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)


def order_return_window_days(*, order: Order) -> int:
    """The longest window among the order's products (a product's override, else the community's)."""
    community_days = order.community.return_window_days
    if community_days is None:
        community_days = DEFAULT_RETURN_WINDOW_DAYS
    override = order.lines.filter(product__return_window_days__isnull=False).aggregate(
        days=Max("product__return_window_days")
    )["days"]
    if override is None:
        return community_days
    plain_lines = order.lines.filter(Q(product__isnull=True) | Q(product__return_window_days__isnull=True))
    return max(override, community_days) if plain_lines.exists() else override


def _commission_held(*, order: Order) -> bool:
    """Not due yet whatever the date: express goods not all delivered, or an after-sale request open."""
    if order.delivery == Order.Delivery.EXPRESS and order.delivered_at is None:
        return True
    return AfterSale.objects.filter(order=order, status__in=AfterSale.OPEN_STATUSES).exists()


def commission_due_after(*, order: Order) -> datetime:
    """When the order's commissions may settle: its return window from payment and, once delivered,
    ``AFTER_SALE_DAYS`` (or the longer return window) from delivery."""
    window = order_return_window_days(order=order)
    due = order.paid_at + timedelta(days=window)
    if order.delivered_at is not None:
        due = max(due, order.delivered_at + timedelta(days=max(window, settings.AFTER_SALE_DAYS)))
    return due


def commission_hold_sync(*, order: Order) -> int:
    """Hold or free the order's pending commissions and move their due date (after delivery, after-sales).

    The caller holds the order's row lock. Returns how many commissions changed.
    """
    pending = Commission.objects.filter(order=order, status=Commission.Status.PENDING)
    if order.paid_at is None or not pending.exists():
        return 0
    held, due = _commission_held(order=order), commission_due_after(order=order)
    return pending.exclude(held=held, settle_after=due).update(held=held, settle_after=due)


def _beneficiaries(*, order: Order) -> list[Membership]:
    """Level 1 then level 2, skipping whoever cannot earn (the buyer, a banned member)."""
    buyer_membership = (
        Membership.objects.filter(user_id=order.buyer_id, community_id=order.community_id)
        .select_related("referred_by")
        .first()
    )
    level1 = order.referrer
    if level1 is None and buyer_membership is not None:
        level1 = buyer_membership.referred_by
    if level1 is None or level1.user_id == order.buyer_id or level1.community_id != order.community_id:
        return []
    chain = [level1]
    level2 = Membership.objects.filter(pk=level1.referred_by_id).first() if level1.referred_by_id else None
    if level2 is not None and level2.user_id != order.buyer_id and level2.community_id == order.community_id:
        chain.append(level2)
    return chain


CREATION_FIELDS = ("beneficiary", "level", "status", "amount", "rate_percent", "settle_after")


def commission_create_for_order(*, order: Order, now: datetime, actor: Actor = SYSTEM) -> list[Commission]:
    """Create the order's pending commissions once it is paid. Caller holds the order's row lock.

    Idempotent: a second call finds the (order, level) rows and creates nothing.
    Each new commission leaves an audit row ("commission.created") naming
    ``actor``, whoever recorded the payment.
    """
    community = order.community
    if order.amount_paid <= 0 or order.paid_at is None:
        return []
    if order.kind == Order.Kind.ENTRY and not community.commission_on_entry_orders:
        return []
    rates = {1: community.referral_level1_percent, 2: community.referral_level2_percent}
    settle_after = commission_due_after(order=order)
    held = order.delivery == Order.Delivery.EXPRESS and order.delivered_at is None  # just paid: no after-sale
    created = []
    for level, beneficiary in enumerate(_beneficiaries(order=order), start=1):
        if beneficiary.status == Membership.Status.BANNED or not rates[level]:
            continue
        amount = commission_amount(base=order.amount_paid, percent=rates[level])
        if amount <= 0:
            continue
        commission, was_created = Commission.objects.get_or_create(
            order=order,
            level=level,
            defaults={
                "community": community,
                "beneficiary": beneficiary,
                "base_amount": order.amount_paid,
                "rate_percent": rates[level],
                "amount": amount,
                "currency": order.currency,
                "settle_after": settle_after,
                "held": held,
            },
        )
        if was_created:
            created.append(commission)
    audit_record_many(
        actor=actor,
        action="commission.created",
        rows=((c, c.community_id, audit_diff({}, audit_snapshot(c, CREATION_FIELDS))) for c in created),
    )
    return created


def commission_reversed_target(*, commission: Commission, order: Order) -> Decimal:
    """How much of ``commission`` the order's confirmed refunds take back, proportionally."""
    if order.amount_paid <= 0 or order.amount_refunded <= 0:
        return ZERO
    if order.amount_refunded >= order.amount_paid:
        return commission.amount
    share = (commission.amount * order.amount_refunded / order.amount_paid).quantize(
        CENT, rounding=ROUND_HALF_UP
    )
    return min(share, commission.amount)


REVERSAL_FIELDS = ("amount_reversed", "status", "reversed_at")


def _reverse_to(*, commission: Commission, target: Decimal, order: Order, now: datetime) -> None:
    """Set what refunds take back of ``commission``; a settled one gets the difference in its ledger."""
    delta = target - commission.amount_reversed
    commission.amount_reversed = target
    fields = ["amount_reversed", "updated_at"]
    if commission.settled_at is not None:
        # Numbered under the commission's row lock: the caller's delta check makes it idempotent.
        sequence = commission.entries.filter(kind=CommissionEntry.Kind.ADJUSTMENT).count() + 1
        CommissionEntry.objects.create(
            beneficiary_id=commission.beneficiary_id,
            commission=commission,
            kind=CommissionEntry.Kind.ADJUSTMENT,
            amount=-delta,
            currency=commission.currency,
            idempotency_key=f"commission:{commission.pk}:adjustment:{sequence}",
            note=_("Refund on order #%(id)s") % {"id": order.pk},
        )
    if target == commission.amount:
        commission.status = Commission.Status.REVERSED
        commission.reversed_at = now
        fields += ["status", "reversed_at"]
    elif commission.status == Commission.Status.REVERSED:
        commission.status = Commission.Status.SETTLED if commission.settled_at else Commission.Status.PENDING
        commission.reversed_at = None
        fields += ["status", "reversed_at"]
    commission.save(update_fields=fields)


def commission_reverse_for_order(*, order: Order, now: datetime, actor: Actor = SYSTEM) -> list[Commission]:
    """Bring the order's commissions in line with its confirmed refunds. Caller holds the order lock.

    Recomputed from totals, so it is idempotent and also follows a refund the
    provider later reports as failed. A settled commission gets a ledger
    adjustment for the difference (negative when more is taken back). Each
    change leaves an audit row ("commission.reversed") naming ``actor``: whoever
    refunded, or the provider whose notification confirmed the refund.
    """
    changed, audit_rows = [], []
    for commission in Commission.objects.select_for_update(of=("self",)).filter(order=order).order_by("pk"):
        target = commission_reversed_target(commission=commission, order=order)
        if target == commission.amount_reversed:
            continue
        before = audit_snapshot(commission, REVERSAL_FIELDS)
        _reverse_to(commission=commission, target=target, order=order, now=now)
        after = audit_snapshot(commission, REVERSAL_FIELDS)
        audit_rows.append((commission, commission.community_id, audit_diff(before, after)))
        changed.append(commission)
    audit_record_many(actor=actor, action="commission.reversed", rows=audit_rows)
    return changed


# Where a worker's scan of due commissions has got to: (settle_after, id) of the last row it saw.
Cursor = tuple[datetime, int] | None


def _due_chunk(*, now: datetime, after: Cursor, batch_size: int) -> list[tuple]:
    """Lock the next due commissions after ``after``, skipping rows another worker holds.

    Walks the partial index on (settle_after, id) of pending rows from the
    cursor, so every chunk costs the same however many were settled before.
    ``of=("self",)`` locks the commissions only: the beneficiaries' membership
    rows joined in for the ban check stay free for other writers, and a
    member's row held elsewhere never hides their commission from the job.
    """
    due = Commission.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        status=Commission.Status.PENDING, settle_after__lte=now, held=False
    )
    if after is not None:
        # (settle_after, id) > after, spelled with a lower bound the index scan starts at.
        settle_after, pk = after
        due = due.filter(settle_after__gte=settle_after).exclude(settle_after=settle_after, pk__lte=pk)
    return list(
        due.exclude(beneficiary__status=Membership.Status.BANNED)
        .order_by("settle_after", "pk")
        .values_list(
            "pk", "settle_after", "beneficiary_id", "community_id", "amount", "amount_reversed", "currency"
        )[:batch_size]
    )


# One chunk in one statement (PostgreSQL): lock the next due rows after the cursor, settle them, write
# their ledger entries and audit rows, and return the count and the new cursor. ``(settle_after, id) >
# cursor`` is a row comparison PostgreSQL turns into the index scan's start: every chunk reads only its own
# rows, however many were settled before it. The same rows as ``_due_chunk``; no per-row Python.
_SETTLE_CHUNK_SQL = """WITH due AS (
    SELECT c.id FROM commerce_commission c JOIN members_membership m ON m.id = c.beneficiary_id
    WHERE c.status = 'pending' AND NOT c.held AND c.settle_after <= %(now)s {after} AND m.status <> 'banned'
    ORDER BY c.settle_after, c.id
    LIMIT %(batch)s
    FOR UPDATE OF c SKIP LOCKED
), settled AS (
    UPDATE commerce_commission c SET status = 'settled', settled_at = %(now)s
    WHERE c.id = ANY(ARRAY(SELECT id FROM due))
    RETURNING c.id, c.settle_after, c.beneficiary_id, c.community_id, c.amount - c.amount_reversed AS net,
              c.currency
), entries AS (
    INSERT INTO commerce_commissionentry
        (beneficiary_id, commission_id, kind, amount, currency, idempotency_key, note, created_at)
    SELECT beneficiary_id, id, 'settlement', net, currency, 'commission:' || id || ':settled', '', %(at)s
    FROM settled WHERE net > 0
    ON CONFLICT DO NOTHING
), audit AS (
    INSERT INTO shequn_backend_auditentry
        (actor_id, actor_label, action, target_type, target_id, community_id, changes, note, created_at)
    SELECT NULL, %(actor)s, 'commission.settled', 'commerce.commission', id::text, community_id,
           jsonb_build_object('status', jsonb_build_array('pending', 'settled'),
                              'settled_at', jsonb_build_array(NULL, %(now_text)s::text)),
           '', %(at)s
    FROM settled
)
SELECT settle_after, id, COUNT(*) OVER () FROM settled ORDER BY settle_after DESC, id DESC LIMIT 1
"""


def _settle_chunk_sql(*, now: datetime, after: Cursor, batch_size: int) -> tuple[int, Cursor]:
    params = {
        "now": now,
        "batch": batch_size,
        "at": timezone.now(),
        "actor": job_actor("settle_commissions"),
        "now_text": now.isoformat(),
    }
    where = ""
    if after is not None:
        where = "AND (c.settle_after, c.id) > (%(after_at)s, %(after_id)s)"
        params["after_at"], params["after_id"] = after
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_CHUNK_SQL.format(after=where), params)
        row = cursor.fetchone()
    if row is None:
        return 0, None
    return row[2], (row[0], row[1])


def _settle_chunk(
    *, now: datetime, after: Cursor, batch_size: int, fail_after: int | None = None
) -> tuple[int, Cursor]:
    """Settle one chunk in one transaction; returns how many and the cursor past it (None when done)."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            result = _settle_chunk_sql(now=now, after=after, batch_size=batch_size)
            if fail_after is not None and result[0]:  # tests: a crash before the chunk commits
                raise RuntimeError("simulated crash half-way through a chunk")
            return result
    with transaction.atomic():
        rows = _due_chunk(now=now, after=after, batch_size=batch_size)
        if not rows:
            return 0, None
        ids = [row[0] for row in rows]
        Commission.objects.filter(pk__in=ids).update(status=Commission.Status.SETTLED, settled_at=now)
        entries = [
            CommissionEntry(
                beneficiary_id=beneficiary_id,
                commission_id=pk,
                kind=CommissionEntry.Kind.SETTLEMENT,
                amount=amount - reversed_amount,
                currency=currency,
                idempotency_key=f"commission:{pk}:settled",
            )
            for pk, _due, beneficiary_id, _community, amount, reversed_amount, currency in rows
            if amount - reversed_amount > 0
        ]
        if fail_after is not None:  # tests: a crash half-way through the chunk
            CommissionEntry.objects.bulk_create(entries[:fail_after], ignore_conflicts=True)
            raise RuntimeError("simulated crash half-way through a chunk")
        CommissionEntry.objects.bulk_create(entries, ignore_conflicts=True)
        audit_record_many(
            actor=job_actor("settle_commissions"),
            action="commission.settled",
            rows=(
                (
                    ("commerce.commission", pk),
                    community_id,
                    {
                        "status": [Commission.Status.PENDING, Commission.Status.SETTLED],
                        "settled_at": [None, now],
                    },
                )
                for pk, _due, _beneficiary, community_id, *_money in rows
            ),
        )
        return len(ids), (rows[-1][1], rows[-1][0])


def commission_settle_due(*, now: datetime, batch_size: int = 2000, fail_after: int | None = None) -> int:
    """Settle every pending commission whose return window closed by ``now``; returns how many.

    Chunked (one transaction per chunk, ``SKIP LOCKED`` on PostgreSQL), so
    several workers share the work, each commission settled by exactly one of
    them; a crash loses at most one uncommitted chunk, which the next run
    settles. Each worker walks the due rows once in (settle_after, id) order.
    Beneficiaries who are banned stay pending. Each settlement leaves an audit
    row ("commission.settled", actor ``job:settle_commissions``).
    """
    settled, after = 0, None
    while True:
        count, after = _settle_chunk(now=now, after=after, batch_size=batch_size, fail_after=fail_after)
        if after is None:
            return settled
        settled += count


def commission_payout_record(
    *, beneficiary_id: int, amount: Decimal, reference: str, actor: Actor
) -> CommissionEntry:
    """Record a payout of ``amount`` to the beneficiary (staff only; the caller checks permission).

    Idempotent per ``reference``. Does not refuse a payout beyond the balance:
    the negative balance is carried forward like any other.
    """
    with transaction.atomic():
        entry, _created = CommissionEntry.objects.get_or_create(
            beneficiary_id=beneficiary_id,
            idempotency_key=f"payout:{reference}"[:100],
            defaults={
                "kind": CommissionEntry.Kind.PAYOUT,
                "amount": -amount.quantize(CENT, rounding=ROUND_HALF_UP),
                "note": reference[:200],
            },
        )
        if _created:
            audit_record(
                actor=actor,
                action="commission.payout_recorded",
                target=entry,
                changes={"beneficiary": beneficiary_id, "amount": entry.amount, "reference": reference},
            )
    return entry


def commission_balance(*, beneficiary_id: int) -> Decimal:
    """The beneficiary's payable balance: the sum of the ledger, negative when a payout was clawed back."""
    total = CommissionEntry.objects.filter(beneficiary_id=beneficiary_id).aggregate(total=Sum("amount"))[
        "total"
    ]
    return (total or ZERO).quantize(CENT)
