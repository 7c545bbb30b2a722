"""Trust reacts to what members and commerce announce (their explicit events, sent on commit).

Commerce and members never import trust, and trust hooks no ``post_save`` at
all: its own content posts mark the community stale in their services. Every
receiver runs after the announcing write committed and is robust: an error
here is logged by ``send_on_commit`` and never fails that write; the stale
scan and the nightly re-score catch up.
"""

from django.dispatch import receiver

from commerce.events import order_paid, order_refunded, product_changed, product_listed
from members.events import (
    community_changed,
    membership_status_changed,
    memberships_expired,
    user_interests_changed,
)
from members.models import Membership
from shequn_backend.calendar import business_day
from trust import activity, services


@receiver([product_listed, product_changed], dispatch_uid="trust_assess_product")
def assess_product(sender, product_id: int, **kwargs):
    services.product_assess(product_id=product_id)


@receiver(community_changed, dispatch_uid="trust_community_changed")
def community_attributes_changed(sender, community_id: int, **kwargs):
    services.community_mark_stale(community_id=community_id)


@receiver(membership_status_changed, dispatch_uid="trust_membership_status")
def membership_status(sender, membership_id: int, community_id: int, **kwargs):
    """Joining or leaving changes the interests the audience holds; churn figures need the exit time."""
    services.community_mark_stale(community_id=community_id)
    membership = Membership.objects.filter(pk=membership_id).first()
    if membership is not None:
        activity.membership_exit_sync(membership=membership)


@receiver(memberships_expired, dispatch_uid="trust_memberships_expired")
def memberships_expired_in_bulk(sender, membership_ids: list[int], community_ids: list[int], **kwargs):
    """The expiry job's chunk: its communities marked stale and its exits recorded, one statement each."""
    services.community_mark_stale_many(community_ids=community_ids)
    activity.membership_exits_sync_many(membership_ids=membership_ids)


@receiver(user_interests_changed, dispatch_uid="trust_interests_changed")
def interests_changed(sender, user_id: int, **kwargs):
    active = Membership.objects.filter(user_id=user_id, status=Membership.Status.ACTIVE)
    for community_id in active.values_list("community_id", flat=True):
        services.community_mark_stale(community_id=community_id)


@receiver(order_paid, dispatch_uid="trust_order_paid")
def order_was_paid(sender, community_id: int, buyer_id: int, paid_at, **kwargs):
    """Sales history moves trust, and buying is activity on the day it was paid."""
    services.community_mark_stale(community_id=community_id)
    activity.activity_record(user_id=buyer_id, community_id=community_id, day=business_day(paid_at))


@receiver(order_refunded, dispatch_uid="trust_order_refunded")
def order_was_refunded(sender, community_id: int, **kwargs):
    services.community_mark_stale(community_id=community_id)
