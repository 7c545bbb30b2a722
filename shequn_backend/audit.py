"""The audit trail: every state-changing service records who changed what, before and after.

Why our own small model rather than a history library: our writes are
service actions (``F()`` deltas, set-based job updates, webhook-driven
transitions) that model-save signals never see, and their actors include
jobs and payment providers, not only signed-in users. Zulip keeps its
``RealmAuditLog`` the same way.

Usage inside a service's transaction::

    before = audit_snapshot(order, ["status", "amount_refunded"])
    ... change the order ...
    audit_record(actor=actor, action="order.refunded", target=order,
                 community_id=order.community_id, changes=audit_diff(before, audit_snapshot(order, [...])))

``actor`` is a user, or a system actor's name (see ``SYSTEM_ACTORS``).
"""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models

from shequn_backend.models import AuditEntry

# Names of actors that are not people; a job names itself "job:<job name>".
SYSTEM = "system"
STRIPE = "provider:stripe"
WECHATPAY = "provider:wechatpay"
SANDBOX = "provider:sandbox"
SYSTEM_ACTORS = (SYSTEM, STRIPE, WECHATPAY, SANDBOX)

Actor = AbstractBaseUser | str


def job_actor(name: str) -> str:
    return f"job:{name}"


def actor_fields(actor: Actor | None) -> dict[str, Any]:
    """The actor as the two columns the trail stores (user and label)."""
    if actor is None:
        return {"actor": None, "actor_label": SYSTEM}
    if isinstance(actor, str):
        return {"actor": None, "actor_label": actor[:64]}
    if not actor.is_authenticated:
        return {"actor": None, "actor_label": "anonymous"}
    return {"actor": actor, "actor_label": f"user:{actor.pk}"}


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a field value (money stays exact as a string)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def audit_snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields' current values (foreign keys by id), JSON-safe."""
    snapshot = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = getattr(field, "attname", name)
        snapshot[name] = _plain(getattr(instance, attname))
    return snapshot


def audit_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """``{field: [before, after]}`` for the fields whose value changed."""
    return {
        key: [_plain(before.get(key)), _plain(after.get(key))]
        for key in after
        if _plain(before.get(key)) != _plain(after.get(key))
    }


def audit_update(
    *,
    actor: Actor | None,
    instance: models.Model,
    values: dict[str, Any],
    action: str,
    community_id: int | None,
    audited: Iterable[str] | None = None,
) -> dict[str, list]:
    """Set ``values`` on a locked ``instance``, save those fields and record what really changed.

    Returns the changes (``{}`` when none: no audit row). ``audited`` names the
    fields snapshotted for the diff (default: the fields set). The saved values
    are read back, so the trail shows what the database holds (rounded money).
    """
    fields = list(audited if audited is not None else values)
    before = audit_snapshot(instance, fields)
    for key, value in values.items():
        setattr(instance, key, value)
    if values:
        instance.save(update_fields=list(values))
        instance.refresh_from_db(fields=list(values))
    changes = audit_diff(before, audit_snapshot(instance, fields))
    if changes:
        audit_record(actor=actor, action=action, target=instance, community_id=community_id, changes=changes)
    return changes


def _target(target: models.Model | tuple[str, Any]) -> tuple[str, str]:
    if isinstance(target, models.Model):
        return target._meta.label_lower, str(target.pk)
    label, pk = target
    return label, str(pk)


def audit_record(
    *,
    actor: Actor | None,
    action: str,
    target: models.Model | tuple[str, Any],
    community_id: int | None = None,
    changes: dict[str, Any] | None = None,
    note: str = "",
) -> AuditEntry:
    """Record one state change. Call it inside the service's transaction, so both commit or neither."""
    entry = audit_entry(
        actor=actor, action=action, target=target, community_id=community_id, changes=changes, note=note
    )
    entry.save(force_insert=True)
    return entry


def audit_entry(
    *,
    actor: Actor | None,
    action: str,
    target: models.Model | tuple[str, Any],
    community_id: int | None = None,
    changes: dict[str, Any] | None = None,
    note: str = "",
) -> AuditEntry:
    """The row ``audit_record`` writes, unsaved (for a caller that inserts it with others)."""
    target_type, target_id = _target(target)
    return AuditEntry(
        **actor_fields(actor),
        action=action,
        target_type=target_type,
        target_id=target_id,
        community_id=community_id,
        changes=_plain(changes or {}),
        note=note[:2000],
    )


def audit_record_many(
    *,
    actor: Actor | None,
    action: str,
    rows: Iterable[tuple[models.Model | tuple[str, Any], int | None, dict[str, Any]]],
    batch_size: int = 2000,
) -> int:
    """Record one action on many objects (set-based jobs); rows are ``(target, community_id, changes)``."""
    who = actor_fields(actor)
    entries = []
    for target, community_id, changes in rows:
        target_type, target_id = _target(target)
        entries.append(
            AuditEntry(
                **who,
                action=action,
                target_type=target_type,
                target_id=target_id,
                community_id=community_id,
                changes=_plain(changes),
            )
        )
    AuditEntry.objects.bulk_create(entries, batch_size=batch_size)
    return len(entries)
