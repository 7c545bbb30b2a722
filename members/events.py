"""What members announces to other apps (trust listens). Members imports none of its listeners.

Send with ``shequn_backend.events.send_on_commit(signal, sender=<model class>, ...)``
from the service that made the change, so listeners run only after it
committed and can never fail it. Arguments are ids and plain values, never
model instances.
"""

from django.dispatch import Signal
from django.utils import timezone

from members.models import Membership
from shequn_backend.events import send_on_commit

# A community's declared attributes or audience-relevant settings changed.
# Arguments: community_id.
community_changed = Signal()

# A user's declared interests were replaced. Arguments: user_id.
user_interests_changed = Signal()

# A membership's status moved: joined, approved, renewed into active, left, expired, banned.
# Arguments: membership_id, community_id, user_id, old_status (None when created), new_status, at (datetime).
membership_status_changed = Signal()


# The expiry job turned a chunk of active memberships expired (one event per chunk, not per
# membership). Arguments: membership_ids (list), community_ids (sorted list), at (datetime).
memberships_expired = Signal()


def memberships_expired_announce(*, membership_ids: list[int], community_ids: list[int]) -> None:
    """Announce, after commit, that one chunk of the expiry job moved these memberships to expired."""
    if not membership_ids:
        return
    send_on_commit(
        memberships_expired,
        sender=Membership,
        membership_ids=list(membership_ids),
        community_ids=sorted(set(community_ids)),
        at=timezone.now(),
    )


def membership_status_announce(*, membership, old_status: str | None) -> None:
    """Announce, after commit, that ``membership`` moved from ``old_status`` (None: new) to its status."""
    if old_status == membership.status:
        return
    send_on_commit(
        membership_status_changed,
        sender=type(membership),
        membership_id=membership.pk,
        community_id=membership.community_id,
        user_id=membership.user_id,
        old_status=old_status,
        new_status=membership.status,
        at=timezone.now(),
    )
