"""Invite codes of invite-only communities: created and changed by owners, used up by joining."""

import secrets
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from members.errors import InvalidSettings
from members.models import Community, InviteCode
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot

INVITE_FIELDS = ("code", "max_uses", "expires_at", "is_active")
# No 0/O, 1/I/L: a code is read aloud and typed from a poster.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def invite_code_suggest() -> str:
    """A fresh, unused code to offer the owner (they may still type their own)."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not InviteCode.objects.filter(code=code).exists():
            return code


def invite_code_check(*, values: dict, invite: InviteCode | None = None) -> None:
    """A code is unique and never allows fewer uses than it has had."""
    fields: dict[str, list[str]] = {}
    uses = invite.uses if invite is not None else 0
    if values.get("max_uses") is None or values["max_uses"] < max(uses, 1):
        fields["max_uses"] = [
            _("Allow at least one use, and no fewer than the code has had (%(uses)d).") % {"uses": uses}
        ]
    same = InviteCode.objects.filter(code=values.get("code"))
    if invite is not None and invite.pk is not None:
        same = same.exclude(pk=invite.pk)
    if not values.get("code") or same.exists():
        fields["code"] = [_("Enter a code no other invite uses.")]
    if fields:
        raise InvalidSettings(fields=fields)


@transaction.atomic
def invite_code_create(
    *,
    actor: Actor,
    community: Community,
    code: str,
    max_uses: int = 1,
    expires_at: datetime | None = None,
    is_active: bool = True,
) -> InviteCode:
    values = {"code": code.strip(), "max_uses": max_uses, "expires_at": expires_at, "is_active": is_active}
    invite_code_check(values=values)
    invite = InviteCode.objects.create(community=community, **values)
    audit_record(
        actor=actor,
        action="invite_code.created",
        target=invite,
        community_id=community.pk,
        changes=audit_diff({}, audit_snapshot(invite, INVITE_FIELDS)),
    )
    return invite


@transaction.atomic
def invite_code_update(*, actor: Actor, invite: InviteCode, **fields) -> InviteCode:
    """Change the allowed uses, expiry or whether the code works; its uses count only by joining."""
    unknown = set(fields) - {"max_uses", "expires_at", "is_active"}
    if unknown:
        raise TypeError(f"unexpected invite code fields {sorted(unknown)}")
    invite = InviteCode.objects.select_for_update().get(pk=invite.pk)
    before = audit_snapshot(invite, INVITE_FIELDS)
    invite_code_check(values={**before, **fields}, invite=invite)
    for key, value in fields.items():
        setattr(invite, key, value)
    invite.save(update_fields=list(fields))
    changes = audit_diff(before, audit_snapshot(invite, INVITE_FIELDS))
    if changes:
        audit_record(
            actor=actor,
            action="invite_code.updated",
            target=invite,
            community_id=invite.community_id,
            changes=changes,
        )
    return invite
