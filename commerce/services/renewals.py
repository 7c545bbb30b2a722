"""Renewal reminders: memberships that expire within the next N days, once per expiry."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils.translation import gettext as _

from commerce.models import Reminder
from commerce.services.reminders import reminders_write
from members.models import Membership
from shequn_backend.audit import job_actor
from shequn_backend.calendar import business_day


def renewal_reminders_create(*, now: datetime, batch_size: int = 2000) -> int:
    """Remind active members whose membership expires within ``RENEWAL_REMIND_DAYS``; returns new ones.

    Keyed on (membership, expiry date): a renewal moves the expiry and the
    next cycle gets its own reminder; a second or concurrent run adds nothing.
    Scans by primary key in chunks.
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
        reminders = [
            Reminder(
                membership_id=pk,
                community_id=community_id,
                kind=Reminder.Kind.RENEWAL,
                due_on=business_day(expires_at),
                due_at=expires_at,
                message=_("Your membership of %(community)s expires on %(date)s. Renew it to stay in.")
                % {"community": name, "date": business_day(expires_at).isoformat()},
            )
            for pk, community_id, expires_at, name in rows
        ]
        created += reminders_write(reminders=reminders, now=now, actor=job_actor("renewal_reminders"))
