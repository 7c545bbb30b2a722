"""Writing reminders with their outbox notifications, once per due cycle."""

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from commerce.models import Notification, Reminder
from shequn_backend.audit import Actor, audit_record_many


def reminders_write(*, reminders: list[Reminder], now: datetime, actor: Actor) -> int:
    """Insert ``reminders`` and queue one notification each; returns how many were new.

    One transaction: a crash leaves neither. The unique constraints (one per
    membership, product and due date; one renewal per expiry) make a second
    or concurrent run insert nothing, and a notification is one-to-one with
    its reminder, so nothing is queued twice either.
    """
    if not reminders:
        return 0
    with transaction.atomic():
        Reminder.objects.bulk_create(reminders, ignore_conflicts=True, batch_size=1000)
        keys = Q()
        for kind in {reminder.kind for reminder in reminders}:
            same = [reminder for reminder in reminders if reminder.kind == kind]
            keys |= Q(
                kind=kind,
                membership_id__in={reminder.membership_id for reminder in same},
                due_on__in={reminder.due_on for reminder in same},
            )
        fresh = list(
            Reminder.objects.filter(keys, notification__isnull=True).values_list(
                "pk",
                "membership__user_id",
                "message",
                "kind",
                "membership__community_id",
                "due_on",
                "due_at",
                "community__name",
                "product__title",
            )
        )
        Notification.objects.bulk_create(
            [
                Notification(
                    user_id=user_id,
                    kind=kind,
                    community_id=community_id,
                    reminder_id=pk,
                    title=str(Reminder.Kind(kind).label),
                    body=message,
                    data={
                        "community": name,
                        "product": product or "",
                        "due_at": due_at.isoformat(),
                    },
                    available_at=now,
                )
                for pk, user_id, message, kind, community_id, _day, due_at, name, product in fresh
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        audit_record_many(
            actor=actor,
            action="reminder.created",
            rows=(
                (("commerce.reminder", pk), community_id, {"kind": kind, "due_on": due_on, "user": user_id})
                for pk, user_id, _message, kind, community_id, due_on, *_names in fresh
            ),
        )
    return len(fresh)
