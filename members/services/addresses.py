"""A member's own delivery addresses: at most ``MAX_ADDRESSES``, exactly one default while any exist.

Every change locks the owner's user row first, so two requests that both
set a default (or delete the default) cannot leave none or two; the partial
unique constraint backs that up. The audit trail names the fields changed,
never the personal data in them.
"""

import re

from django.db import transaction
from django.utils.translation import gettext as _

from members.models import Address, User
from shequn_backend.audit import Actor, audit_record
from shequn_backend.errors import ApplicationError

MAX_ADDRESSES = 20
FIELDS = ("name", "phone", "province", "city", "district", "detail")
PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,18}[0-9]$")


class TooManyAddresses(ApplicationError):
    code = "too_many_addresses"
    http_status = 409


def _check_phone(phone: str) -> None:
    if not PHONE.match(phone):
        raise ApplicationError(
            _("Enter the phone number as digits, for example 13800138000."),
            code="validation_error",
            fields={"phone": [_("Enter a valid phone number.")]},
        )


def _lock_owner(user_id: int) -> None:
    User.objects.select_for_update().filter(pk=user_id).exists()


def _make_default(address: Address) -> None:
    Address.objects.filter(user_id=address.user_id, is_default=True).exclude(pk=address.pk).update(
        is_default=False
    )
    if not address.is_default:
        address.is_default = True
        address.save(update_fields=["is_default", "updated_at"])


@transaction.atomic
def address_create(*, actor: Actor, user: User, is_default: bool = False, **fields) -> Address:
    """Add an address for ``user``; the first one (or one marked so) becomes the default."""
    _check_phone(fields["phone"])
    _lock_owner(user.pk)
    count = Address.objects.filter(user=user).count()
    if count >= MAX_ADDRESSES:
        raise TooManyAddresses(
            _("You can keep at most %(n)d addresses. Delete one first.") % {"n": MAX_ADDRESSES}
        )
    address = Address.objects.create(user=user, **{name: fields.get(name, "") for name in FIELDS})
    if is_default or count == 0:
        _make_default(address)
    audit_record(
        actor=actor, action="address.created", target=address, changes={"is_default": address.is_default}
    )
    return address


@transaction.atomic
def address_update(*, actor: Actor, address: Address, **changes) -> Address:
    """Change the caller's address; ``is_default=True`` moves the default here (False is ignored:
    the default moves only by choosing another)."""
    if "phone" in changes:
        _check_phone(changes["phone"])
    _lock_owner(address.user_id)
    address = Address.objects.get(pk=address.pk)
    changed = [name for name in FIELDS if name in changes and changes[name] != getattr(address, name)]
    for name in changed:
        setattr(address, name, changes[name])
    if changed:
        address.save(update_fields=[*changed, "updated_at"])
    if changes.get("is_default") and not address.is_default:
        _make_default(address)
        changed.append("is_default")
    if changed:
        audit_record(actor=actor, action="address.updated", target=address, changes={"fields": changed})
    return address


@transaction.atomic
def address_delete(*, actor: Actor, address: Address) -> None:
    """Delete the caller's address; when it was the default, the newest one left becomes the default.
    Orders keep their own copy, so nothing placed changes."""
    _lock_owner(address.user_id)
    address = Address.objects.filter(pk=address.pk).first()
    if address is None:
        return
    was_default = address.is_default
    audit_record(actor=actor, action="address.deleted", target=address)
    address.delete()
    if was_default:
        successor = Address.objects.filter(user_id=address.user_id).order_by("-created_at", "-id").first()
        if successor is not None:
            _make_default(successor)
