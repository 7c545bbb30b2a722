"""Withdrawals (提现): KOLs draw settled commission, finance reviews, WeChat Pay transfers it.

* ``withdrawal_request``: the member asks for an amount of their available
  balance (settled commission of all their communities, less what earlier
  withdrawals took). The user's row is locked while the balance is read and
  the ledger debited, so concurrent requests can never draw more than there is;
  nothing is drawn while a community's balance is negative (a refund took back
  commission already paid out).
* ``withdrawal_approve`` / ``withdrawal_reject``: finance staff decide; a
  rejection credits the ledger back.
* ``withdrawal_transfer``: an approved withdrawal is sent to WeChat Pay's
  merchant transfer (outside any lock); WeChat answers ``WAIT_USER_CONFIRM``
  with the ``package_info`` the member confirms in the mini-program.
* ``withdrawal_apply_transfer``: what WeChat says (answer, query or signed
  notification), applied under the withdrawal's row lock. Final states never
  change again; a failed or cancelled transfer credits the ledger back once.
* ``withdrawal_sync_due`` (job ``sync_withdrawals``): queries transfers in
  flight, restarts lost ones, and cancels those unconfirmed for
  ``WITHDRAWAL_CONFIRM_HOURS``.
"""

import logging
import uuid
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import errors
from commerce.models import CURRENCY_CNY, CommissionEntry, Withdrawal
from commerce.payments import base
from commerce.payments.wechatpay import transfers
from commerce.services.notifications import notification_queue
from members.models import User
from shequn_backend.audit import Actor, audit_record, job_actor
from shequn_backend.errors import NotFound

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
SMALLEST_TRANSFER = Decimal("0.10")
S = Withdrawal.Status
# WeChat's transfer states and the status each gives (None: in flight, the status stays).
TRANSFER_STATES = {
    "ACCEPTED": S.TRANSFERRING,
    "PROCESSING": S.TRANSFERRING,
    "TRANSFERING": S.TRANSFERRING,
    "WAIT_USER_CONFIRM": S.AWAITING_CONFIRMATION,
    "CANCELING": None,
    "SUCCESS": S.PAID,
    "FAIL": S.FAILED,
    "CANCELLED": S.CANCELLED,
}
WECHATPAY_ACTOR = base.provider_actor("wechatpay")


def _audit(*, actor: Actor, withdrawal: Withdrawal, action: str, before: str, note: str = "") -> None:
    audit_record(
        actor=actor,
        action=action,
        target=withdrawal,
        changes={"status": [before, withdrawal.status], "amount": withdrawal.amount},
        note=note,
    )


# --- balances ------------------------------------------------------------------------------------


def withdrawal_balances(*, user_id: int) -> dict[int, Decimal]:
    """The user's commission balance per membership (CNY), the ledger's sums; zero ones left out."""
    rows = (
        CommissionEntry.objects.filter(beneficiary__user_id=user_id, currency=CURRENCY_CNY)
        .values("beneficiary_id")
        .annotate(total=Sum("amount"))
        .order_by("beneficiary_id")
    )
    return {row["beneficiary_id"]: row["total"].quantize(CENT) for row in rows if row["total"]}


def withdrawal_available(*, user_id: int) -> Decimal:
    """What the user may withdraw now: nothing while any community's balance is negative."""
    balances = withdrawal_balances(user_id=user_id)
    if any(value < 0 for value in balances.values()):
        return ZERO
    return sum(balances.values(), ZERO)


def withdrawal_fee(*, amount: Decimal) -> Decimal:
    """``WITHDRAWAL_FEE_RATE`` of ``amount``, rounded half up to the fen."""
    rate = Decimal(settings.WITHDRAWAL_FEE_RATE)
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


# --- the member's request -------------------------------------------------------------------------


def _check_request(*, user: User, amount: Decimal, real_name: str) -> Decimal:
    minimum = Decimal(settings.WITHDRAWAL_MINIMUM)
    if amount < minimum:
        raise errors.WithdrawalBelowMinimum(
            _("Withdrawals start at %(minimum)s yuan.") % {"minimum": minimum},
            fields={"amount": [_("Enter at least %(minimum)s yuan.") % {"minimum": minimum}]},
        )
    fee = withdrawal_fee(amount=amount)
    if fee < 0 or amount - fee < SMALLEST_TRANSFER:  # WeChat Pay transfers start at 0.10 yuan
        raise errors.WithdrawalBelowMinimum(fields={"amount": [_("The fee would take the whole amount.")]})
    if not user.wechat_openid:
        raise errors.WechatBindingRequired(
            _(
                "Withdrawals are paid to your WeChat: bind it first (call wx.login in the mini-program "
                "and send the code to /api/v1/auth/wechat/bind/)."
            )
        )
    if transfers.real_name_required(amount - fee) and not real_name.strip():
        raise errors.RealNameRequired()
    return fee


def withdrawal_request(
    *,
    actor: Actor,
    user: User,
    amount: Decimal,
    real_name: str = "",
    idempotency_key: str | None = None,
) -> tuple[Withdrawal, bool]:
    """The member asks to withdraw ``amount``; returns the withdrawal and whether it is new.

    A replay with the same ``idempotency_key`` returns the first withdrawal.
    Refuses (400) below ``WITHDRAWAL_MINIMUM``, (409 ``wechat_binding_required``)
    without WeChat, (400 ``real_name`` field) from 2,000 yuan without the payee's
    real name, (409 ``negative_balance``) while a community's balance is
    negative and (409 ``insufficient_balance``) above the available balance.
    """
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    key = (idempotency_key or "")[:100]
    if key:
        existing = Withdrawal.objects.filter(user_id=user.pk, idempotency_key=key).first()
        if existing is not None:
            return existing, False
    fee = _check_request(user=user, amount=amount, real_name=real_name)
    try:
        with transaction.atomic():
            # The user's row is the lock on their whole commission ledger for withdrawals.
            User.objects.select_for_update().only("pk").get(pk=user.pk)
            if key and (existing := Withdrawal.objects.filter(user_id=user.pk, idempotency_key=key).first()):
                return existing, False
            balances = withdrawal_balances(user_id=user.pk)
            if any(value < 0 for value in balances.values()):
                raise errors.NegativeBalance()
            available = sum(balances.values(), ZERO)
            if amount > available:
                raise errors.InsufficientBalance(
                    _("You can withdraw at most %(available)s yuan now.") % {"available": available}
                )
            withdrawal = Withdrawal.objects.create(
                user_id=user.pk,
                amount=amount,
                fee=fee,
                currency=CURRENCY_CNY,
                out_bill_no="WD" + uuid.uuid4().hex[:24].upper(),
                openid=user.wechat_openid,
                real_name=real_name.strip()[:64] if transfers.real_name_required(amount - fee) else "",
                idempotency_key=key,
            )
            _debit(withdrawal=withdrawal, balances=balances)
            audit_record(
                actor=actor,
                action="withdrawal.requested",
                target=withdrawal,
                changes={
                    "status": [None, withdrawal.status],
                    "amount": amount,
                    "fee": fee,
                    "out_bill_no": withdrawal.out_bill_no,
                },
            )
    except IntegrityError:  # the same key raced in: the other request won
        if key and (existing := Withdrawal.objects.filter(user_id=user.pk, idempotency_key=key).first()):
            return existing, False
        raise
    return withdrawal, True


def _debit(*, withdrawal: Withdrawal, balances: dict[int, Decimal]) -> None:
    """Take the amount from the communities' balances in turn: one payout entry per community."""
    left, entries = withdrawal.amount, []
    for beneficiary_id, balance in balances.items():
        if left <= 0:
            break
        take = min(left, balance)
        if take <= 0:
            continue
        entries.append(
            CommissionEntry(
                beneficiary_id=beneficiary_id,
                withdrawal=withdrawal,
                kind=CommissionEntry.Kind.PAYOUT,
                amount=-take,
                currency=withdrawal.currency,
                idempotency_key=f"withdrawal:{withdrawal.pk}",
                note=withdrawal.out_bill_no,
            )
        )
        left -= take
    if left != 0:  # the caller checked the balance under the lock
        raise AssertionError("withdrawal above the balance")
    CommissionEntry.objects.bulk_create(entries)


def _credit_back(*, withdrawal: Withdrawal) -> None:
    """Return the withdrawn money to each community's balance, once (the keys are unique)."""
    payouts = withdrawal.entries.filter(kind=CommissionEntry.Kind.PAYOUT)
    CommissionEntry.objects.bulk_create(
        [
            CommissionEntry(
                beneficiary_id=payout.beneficiary_id,
                withdrawal=withdrawal,
                kind=CommissionEntry.Kind.RETURNED,
                amount=-payout.amount,
                currency=payout.currency,
                idempotency_key=f"withdrawal:{withdrawal.pk}:returned",
                note=withdrawal.out_bill_no,
            )
            for payout in payouts
        ],
        ignore_conflicts=True,
    )


def withdrawal_get_own(*, user: User, withdrawal_id: int) -> Withdrawal:
    """The caller's own withdrawal; 404 for anyone else's."""
    withdrawal = Withdrawal.objects.filter(pk=withdrawal_id, user_id=user.pk).first()
    if withdrawal is None:
        raise NotFound()
    return withdrawal


# --- finance review --------------------------------------------------------------------------------


# The payout message's status is a ``phrase`` field: at most five characters.
_RESULT_PHRASES = {S.PAID: "已到账", S.FAILED: "转账失败", S.CANCELLED: "已取消", S.REJECTED: "未通过"}


def _tell_member(*, actor: Actor, withdrawal: Withdrawal) -> None:
    """Queue the payout-result message for a withdrawal that just reached a final status."""
    phrase = _RESULT_PHRASES.get(withdrawal.status)
    if phrase is None:
        return
    if withdrawal.status == S.PAID:
        body = _("Your withdrawal of ¥%(amount)s has reached your WeChat balance.")
    else:
        body = _("Your withdrawal of ¥%(amount)s was not paid; the money is back in your balance.")
    notification_queue(
        actor=actor,
        user=withdrawal.user,
        kind="payout",
        key=f"withdrawal:{withdrawal.pk}:{withdrawal.status}",
        title=_("Withdrawal result"),
        body=body % {"amount": withdrawal.amount},
        data={"amount": withdrawal.transfer_amount, "status": phrase, "time": withdrawal.finished_at},
    )


def _reviewer(actor: Actor):
    return actor if isinstance(actor, AbstractBaseUser) else None


def withdrawal_approve(*, actor: Actor, withdrawal_id: int, note: str = "") -> Withdrawal:
    """Finance approves a requested withdrawal (the caller checked the permission); idempotent.

    The transfer is started by ``withdrawal_transfer`` after the commit.
    ``Conflict`` (409) for a withdrawal no longer waiting for review.
    """
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update().get(pk=withdrawal_id)
        if withdrawal.status == S.APPROVED:
            return withdrawal
        if withdrawal.status != S.REQUESTED:
            raise errors.WithdrawalNotReviewable()
        before = withdrawal.status
        withdrawal.status, withdrawal.reviewed_at = S.APPROVED, timezone.now()
        withdrawal.reviewed_by, withdrawal.review_note = _reviewer(actor), note[:200]
        withdrawal.save(update_fields=["status", "reviewed_at", "reviewed_by", "review_note", "updated_at"])
        _audit(actor=actor, withdrawal=withdrawal, action="withdrawal.approved", before=before, note=note)
    return withdrawal


def withdrawal_reject(*, actor: Actor, withdrawal_id: int, note: str) -> Withdrawal:
    """Finance rejects a withdrawal not yet sent to WeChat; the money goes back to the balance."""
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update().get(pk=withdrawal_id)
        if withdrawal.status == S.REJECTED:
            return withdrawal
        if withdrawal.status not in (S.REQUESTED, S.APPROVED):
            raise errors.WithdrawalNotReviewable()
        before, now = withdrawal.status, timezone.now()
        withdrawal.status, withdrawal.reviewed_at, withdrawal.finished_at = S.REJECTED, now, now
        withdrawal.reviewed_by, withdrawal.review_note = _reviewer(actor), note[:200]
        withdrawal.real_name = ""
        withdrawal.save(
            update_fields=[
                "status",
                "reviewed_at",
                "finished_at",
                "reviewed_by",
                "review_note",
                "real_name",
                "updated_at",
            ]
        )
        _credit_back(withdrawal=withdrawal)
        _audit(actor=actor, withdrawal=withdrawal, action="withdrawal.rejected", before=before, note=note)
        _tell_member(actor=actor, withdrawal=withdrawal)
    return withdrawal


# --- the transfer ---------------------------------------------------------------------------------


def withdrawal_transfer(*, withdrawal_id: int, actor: Actor) -> Withdrawal:
    """Send an approved withdrawal to WeChat Pay (or send again one whose answer was lost).

    Sent again, it is the same request with the same out_bill_no (WeChat answers the same bill,
    with the ``package_info`` a query does not give).

    The status moves to ``transferring`` before the call, so a crash leaves it
    for ``sync_withdrawals`` to query. No lock is held during the call.
    Returns the withdrawal as it stands after WeChat's answer (``awaiting_confirmation``
    with ``package_info``); a WeChat that does not answer leaves it ``transferring``.
    """
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update().get(pk=withdrawal_id)
        # A bill found by query has no package_info: the same request again answers it.
        unconfirmable = withdrawal.status == S.AWAITING_CONFIRMATION and not withdrawal.package_info
        if withdrawal.status not in (S.APPROVED, S.TRANSFERRING) and not unconfirmable:
            return withdrawal
        if withdrawal.status == S.APPROVED:
            withdrawal.status, withdrawal.transfer_started_at = S.TRANSFERRING, timezone.now()
            withdrawal.save(update_fields=["status", "transfer_started_at", "updated_at"])
            _audit(
                actor=actor, withdrawal=withdrawal, action="withdrawal.transfer_started", before=S.APPROVED
            )
    try:
        with base.provider_deadline():
            state = transfers.transfer_create(
                reference=withdrawal.out_bill_no,
                openid=withdrawal.openid,
                amount=withdrawal.transfer_amount,
                remark=settings.WITHDRAWAL_TRANSFER_REMARK,
                real_name=withdrawal.real_name,
            )
    except base.ProviderUnavailable as exc:
        logger.warning("Withdrawal %s: WeChat Pay did not answer the transfer: %s", withdrawal.pk, exc)
        return withdrawal
    except base.ProviderRefused as exc:
        if not transfers.refusal_is_final(exc.code):
            return _note_retry(withdrawal=withdrawal, exc=exc)
        state = _state_after_refusal(withdrawal=withdrawal, exc=exc)
        if state is None:
            return withdrawal
    return withdrawal_apply_transfer(actor=actor, state=state) or withdrawal


def _note_retry(*, withdrawal: Withdrawal, exc: base.ProviderRefused) -> Withdrawal:
    """A refusal to retry with the same out_bill_no (e.g. ``NOT_ENOUGH``): kept in ``wechat_state``.

    The withdrawal stays ``transferring``; ``sync_withdrawals`` sends it again.
    """
    logger.warning("Withdrawal %s: WeChat Pay refused the transfer for now: %s", withdrawal.pk, exc)
    Withdrawal.objects.filter(pk=withdrawal.pk, status=S.TRANSFERRING).update(
        wechat_state=exc.code[:32], updated_at=timezone.now()
    )
    withdrawal.refresh_from_db()
    return withdrawal


def _state_after_refusal(*, withdrawal: Withdrawal, exc: base.ProviderRefused) -> base.TransferState | None:
    """WeChat refused the transfer: if it has the bill anyway (a resend), its state; else a failure."""
    try:
        with base.provider_deadline():
            return transfers.transfer_fetch(reference=withdrawal.out_bill_no)
    except base.ProviderUnavailable:
        return None
    except base.ProviderRefused as query_exc:
        if query_exc.code != "NOT_FOUND":
            return None
    logger.warning("Withdrawal %s: WeChat Pay refused the transfer: %s", withdrawal.pk, exc)
    return base.TransferState(
        reference=withdrawal.out_bill_no, state="FAIL", fail_reason=f"{exc.code}: {exc}"
    )


def withdrawal_apply_transfer(*, actor: Actor, state: base.TransferState) -> Withdrawal | None:
    """Apply WeChat's state of a transfer; None when the transfer is not one of ours.

    Idempotent and order-free: a final status never changes again, so a late
    ``WAIT_USER_CONFIRM`` answer after the ``SUCCESS`` notification changes
    nothing, and the money of a failed or cancelled transfer is credited back once.
    """
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update().filter(out_bill_no=state.reference).first()
        if withdrawal is None:
            return None
        if state.amount is not None and state.amount != withdrawal.transfer_amount:
            logger.error(
                "Withdrawal %s: WeChat reports %s yuan, ours is %s: not applied.",
                withdrawal.pk,
                state.amount,
                withdrawal.transfer_amount,
            )
            return withdrawal
        if state.state not in TRANSFER_STATES:
            logger.warning("Withdrawal %s: unknown transfer state %r.", withdrawal.pk, state.state)
            return withdrawal
        if withdrawal.status in Withdrawal.FINAL or withdrawal.status == S.REQUESTED:
            return withdrawal  # settled already (or never sent: not ours to change)
        before, target = withdrawal.status, TRANSFER_STATES[state.state]
        fields = ["wechat_state", "updated_at"]
        withdrawal.wechat_state = state.state
        if state.ref and not withdrawal.transfer_bill_no:
            withdrawal.transfer_bill_no = state.ref[:64]
            fields.append("transfer_bill_no")
        if state.package_info:
            withdrawal.package_info = state.package_info
            fields.append("package_info")
        if target is not None and target != withdrawal.status:
            withdrawal.status = target
            fields.append("status")
            if target in Withdrawal.FINAL:
                withdrawal.finished_at = timezone.now()
                withdrawal.fail_reason = state.fail_reason[:200]
                withdrawal.real_name = ""  # needed for the transfer only: not kept past it
                fields += ["finished_at", "fail_reason", "real_name"]
        withdrawal.save(update_fields=fields)
        if withdrawal.status != before:
            if withdrawal.status in Withdrawal.RETURNED:
                _credit_back(withdrawal=withdrawal)
            _audit(
                actor=actor,
                action=f"withdrawal.{withdrawal.status}",
                withdrawal=withdrawal,
                before=before,
                note=state.fail_reason,
            )
            _tell_member(actor=actor, withdrawal=withdrawal)
    return withdrawal


# --- the job ---------------------------------------------------------------------------------------


def _sync_one(*, withdrawal: Withdrawal, now: datetime, actor: Actor) -> None:
    if withdrawal.status == S.APPROVED:
        withdrawal_transfer(withdrawal_id=withdrawal.pk, actor=actor)
        return
    try:
        with base.provider_deadline():
            state = transfers.transfer_fetch(reference=withdrawal.out_bill_no)
    except base.ProviderRefused as exc:
        if exc.code == "NOT_FOUND":  # WeChat never got it (the call was lost): send it again
            withdrawal_transfer(withdrawal_id=withdrawal.pk, actor=actor)
        return
    withdrawal = withdrawal_apply_transfer(actor=actor, state=state) or withdrawal
    if withdrawal.status == S.AWAITING_CONFIRMATION and not withdrawal.package_info:
        # Queries carry no package_info (the create answer was lost): ask for the same bill again.
        withdrawal = withdrawal_transfer(withdrawal_id=withdrawal.pk, actor=actor)
    started = withdrawal.transfer_started_at or withdrawal.created_at
    overdue = now - started >= timedelta(hours=settings.WITHDRAWAL_CONFIRM_HOURS)
    if withdrawal.status == S.AWAITING_CONFIRMATION and overdue and state.state == "WAIT_USER_CONFIRM":
        with base.provider_deadline():
            cancelling = transfers.transfer_cancel(reference=withdrawal.out_bill_no)
        withdrawal_apply_transfer(actor=actor, state=cancelling)


def withdrawal_sync_due(*, now: datetime, stale_minutes: int = 5) -> int:
    """Query the transfers in flight (and start approved ones left behind); returns how many were checked.

    A transfer the member has not confirmed within ``WITHDRAWAL_CONFIRM_HOURS`` is
    cancelled at WeChat; its money comes back when WeChat reports it cancelled.
    """
    actor = job_actor("sync_withdrawals")
    due = Withdrawal.objects.filter(
        status__in=[S.APPROVED, *Withdrawal.IN_FLIGHT], updated_at__lte=now - timedelta(minutes=stale_minutes)
    )
    checked = 0
    for withdrawal in due.order_by("pk"):
        try:
            _sync_one(withdrawal=withdrawal, now=now, actor=actor)
        except (base.ProviderUnavailable, base.ProviderRefused) as exc:
            logger.warning("Withdrawal %s not synced: %s", withdrawal.pk, exc)
            continue
        checked += 1
    return checked
