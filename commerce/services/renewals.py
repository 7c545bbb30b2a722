"""Renewal reminders: memberships that expire within the next N days, once per expiry."""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils.translation import gettext as _

from commerce.models import Coupon, MemberCoupon, Reminder
from commerce.services.coupons import coupon_give_automatic
from commerce.services.reminders import ReminderRow, reminders_write
from members.models import Membership
from shequn_backend.audit import job_actor
from shequn_backend.calendar import business_zone

RENEWAL_ACTOR = job_actor("renewal_reminders")


def renewal_reminders_create(*, now: datetime, batch_size: int = 2000) -> int:
    """Remind active members whose membership expires within ``RENEWAL_REMIND_DAYS``; returns new ones.

    Keyed on (membership, expiry date): a renewal moves the expiry and the
    next cycle gets its own reminder; a second or concurrent run adds nothing.
    Scans by primary key in chunks. Where the community offers a renewal
    coupon (given with the renewal reminder, e.g. renew at half price), the
    member gets it and the reminder names it.
    """
    horizon = now + timedelta(days=settings.RENEWAL_REMIND_DAYS)
    created = 0
    last_id = 0
    while True:
        rows = list(
            Membership.objects.filter(
                status=Membership.Status.ACTIVE, expires_at__gt=now, expires_at__lte=horizon, pk__gt=last_id
            )
            .order_by("pk")
            .values_list("pk", "community_id", "expires_at", "community__name")[:batch_size]
        )
        if not rows:
            return created
        last_id = rows[-1][0]
        offers = set(
            Coupon.objects.filter(
                community_id__in={row[1] for row in rows},
                trigger=Coupon.Trigger.RENEWAL_REMINDER,
                is_active=True,
                valid_from__lte=now,
                valid_until__gt=now,
            ).values_list("community_id", flat=True)
        )
        reminders = []
        # Translated and resolved once per chunk, not per row.
        template = _("Your membership of %(community)s expires on %(date)s. Renew it to stay in.")
        zone = business_zone()
        for pk, community_id, expires_at, name in rows:
            due_on = expires_at.astimezone(zone).date()  # its business day
            message = template % {"community": name, "date": due_on.isoformat()}
            coupon = _renewal_offer(membership_id=pk, due_on=due_on) if community_id in offers else None
            if coupon is not None:
                offer = _("A renewal coupon is waiting for you: %(coupon)s.") % {"coupon": coupon.coupon.name}
                message = f"{message} {offer}"
            reminders.append(
                ReminderRow(
                    membership_id=pk,
                    community_id=community_id,
                    kind=Reminder.Kind.RENEWAL,
                    due_on=due_on,
                    due_at=expires_at,
                    message=message[:300],
                    coupon_id=coupon.pk if coupon is not None else None,
                )
            )
        created += reminders_write(reminders=reminders, now=now, actor=RENEWAL_ACTOR)


def _renewal_offer(*, membership_id: int, due_on: date) -> MemberCoupon | None:
    """The renewal coupon given with this expiry's reminder: given once, found again on a rerun."""
    key = f"renewal-reminder:{due_on.isoformat()}"
    coupon_give_automatic(
        actor=RENEWAL_ACTOR,
        trigger=Coupon.Trigger.RENEWAL_REMINDER,
        membership_id=membership_id,
        source_key=key,
    )
    return (
        MemberCoupon.objects.filter(membership_id=membership_id, source_key=key)
        .select_related("coupon")
        .order_by("pk")
        .first()
    )
