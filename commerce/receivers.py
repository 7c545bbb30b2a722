"""Commerce reacts to what members and commerce announce: coupons given on join, referral and renewal.

Each receiver runs after the announcing write committed and is robust (see
``shequn_backend.events``); giving a coupon is idempotent per source key, so
a repeated event gives nothing more.
"""

from django.dispatch import receiver

from commerce.events import order_paid
from commerce.models import Coupon, Order
from commerce.services.coupons import coupon_give_automatic
from members.events import membership_status_changed
from members.models import Membership
from shequn_backend.audit import job_actor

COUPON_ACTOR = job_actor("coupons")


@receiver(membership_status_changed, dispatch_uid="commerce_coupons_on_join")
def coupons_on_join(sender, membership_id: int, old_status, new_status, **kwargs):
    """A member who becomes active gets the join coupons once; their referrer the referral coupons once."""
    if new_status != Membership.Status.ACTIVE or old_status == Membership.Status.ACTIVE:
        return
    coupon_give_automatic(
        actor=COUPON_ACTOR,
        trigger=Coupon.Trigger.JOIN,
        membership_id=membership_id,
        source_key=f"join:{membership_id}",
    )
    referrer_id = Membership.objects.filter(pk=membership_id).values_list("referred_by_id", flat=True).first()
    if referrer_id:
        coupon_give_automatic(
            actor=COUPON_ACTOR,
            trigger=Coupon.Trigger.REFERRAL,
            membership_id=referrer_id,
            source_key=f"referral:{membership_id}",
        )


@receiver(order_paid, dispatch_uid="commerce_coupons_on_renewal")
def coupons_on_renewal(sender, order_id: int, kind: str, **kwargs):
    """A paid entry order that renews (the membership paid an entry before) gives the renewal coupons."""
    if kind != Order.Kind.ENTRY:
        return
    order = Order.objects.filter(pk=order_id).values("membership_id").first()
    if not order or not order["membership_id"]:
        return
    earlier = Order.objects.filter(
        kind=Order.Kind.ENTRY, membership_id=order["membership_id"], paid_at__isnull=False, pk__lt=order_id
    ).exists()
    if earlier:
        coupon_give_automatic(
            actor=COUPON_ACTOR,
            trigger=Coupon.Trigger.RENEWAL,
            membership_id=order["membership_id"],
            source_key=f"renewal:{order_id}",
        )
