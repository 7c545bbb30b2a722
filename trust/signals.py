"""Trust reacts to changes in members and commerce itself (commerce never imports trust).

A product saved is assessed at once (the owner sees the verdict where they
act); changes to a community's audience evidence mark it stale for the
re-scoring job.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from commerce.models import Order, Product
from members.models import Community, Membership
from members.signals import community_attributes_changed, user_interests_changed
from shequn_backend.calendar import business_day
from trust import activity, services
from trust.models import ContentPost
from trust.selectors import PAID_STATUSES


@receiver(post_save, sender=Product, dispatch_uid="trust_assess_product")
def assess_saved_product(sender, instance: Product, raw=False, **kwargs):
    if not raw:
        services.product_assess(product_id=instance.pk)


@receiver(post_save, sender=Community, dispatch_uid="trust_community_saved")
def community_saved(sender, instance: Community, created=False, raw=False, **kwargs):
    if not raw and not created:
        services.community_mark_stale(community_id=instance.pk)


@receiver([post_save, post_delete], sender=ContentPost, dispatch_uid="trust_post_changed")
def content_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        services.community_mark_stale(community_id=instance.community_id)


@receiver(community_attributes_changed, dispatch_uid="trust_attributes_changed")
def attributes_changed(sender, community_id: int, **kwargs):
    services.community_mark_stale(community_id=community_id)


@receiver(post_save, sender=Membership, dispatch_uid="trust_membership_changed")
def membership_changed(sender, instance: Membership, raw=False, update_fields=None, **kwargs):
    """Members joining or leaving change the interests the audience holds."""
    if not raw and (update_fields is None or "status" in update_fields):
        services.community_mark_stale(community_id=instance.community_id)


@receiver(user_interests_changed, dispatch_uid="trust_interests_changed")
def interests_changed(sender, user_id: int, **kwargs):
    active = Membership.objects.filter(user_id=user_id, status=Membership.Status.ACTIVE)
    for community_id in active.values_list("community_id", flat=True):
        services.community_mark_stale(community_id=community_id)


@receiver(post_save, sender=Order, dispatch_uid="trust_order_changed")
def order_changed(sender, instance: Order, raw=False, **kwargs):
    """Paid, refunded: sales history moves trust."""
    if not raw and instance.status in PAID_STATUSES:
        services.community_mark_stale(community_id=instance.community_id)


@receiver(post_save, sender=Membership, dispatch_uid="trust_membership_exit")
def membership_exit_changed(sender, instance: Membership, raw=False, update_fields=None, **kwargs):
    """Churn figures need the time a member left; members keeps no such time, so trust does."""
    if not raw and (update_fields is None or "status" in update_fields):
        activity.membership_exit_sync(membership=instance)


@receiver(post_save, sender=Order, dispatch_uid="trust_order_activity")
def order_activity(sender, instance: Order, raw=False, **kwargs):
    """Buying is activity: a paid order marks its buyer active on the day it was paid."""
    if not raw and instance.status in PAID_STATUSES and instance.paid_at is not None:
        activity.activity_record(
            user_id=instance.buyer_id,
            community_id=instance.community_id,
            day=business_day(instance.paid_at),
        )
