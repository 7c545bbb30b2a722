"""Membership endpoints that need commerce: paid join (the entry order) and referral commissions.

Commerce may import members, never the reverse: members keeps the membership
services; these views call ``membership_join`` and then, for a paid plan,
commerce's ``entry_checkout``.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.api.serializers import MoneyField, OrderPaymentOutput
from commerce.api.views import idempotency_key
from commerce.payments.base import ONLINE_PROVIDERS
from commerce.selectors import commission_totals_by_membership
from commerce.services.entry import entry_checkout
from commerce.services.payments import payment_precheck
from members import selectors
from members.api.serializers import MembershipOutput
from members.models import Community, EntryPlan
from members.services.memberships import membership_join
from shequn_backend.api.schema import IDEMPOTENCY_HEADER, error_responses
from shequn_backend.errors import NotFound


class JoinInput(serializers.Serializer):
    plan = serializers.IntegerField(required=False, min_value=1)
    referral_code = serializers.CharField(max_length=16, required=False, allow_blank=True)
    invite_code = serializers.CharField(max_length=32, required=False, allow_blank=True)
    provider = serializers.ChoiceField(choices=ONLINE_PROVIDERS, required=False)
    coupon = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="One of your coupons for entry plans."
    )
    coupon_code = serializers.CharField(
        max_length=32, required=False, help_text="Claim a coupon and apply it."
    )


class JoinOutput(serializers.Serializer):
    membership = MembershipOutput()
    payment = OrderPaymentOutput(allow_null=True)


class CommissionTotals(serializers.Serializer):
    pending = MoneyField()
    settled = MoneyField()
    reversed = MoneyField()
    currency = serializers.CharField()


class ReferralMembershipOutput(serializers.Serializer):
    community = serializers.CharField()
    referral_code = serializers.CharField()
    invited_count = serializers.IntegerField()
    commissions = CommissionTotals()


class ReferralsOutput(serializers.Serializer):
    memberships = ReferralMembershipOutput(many=True)


def _public_community(slug: str) -> Community:
    try:
        return selectors.community_get_public(slug=slug)
    except Community.DoesNotExist:
        raise NotFound() from None


class JoinApi(APIView):
    @extend_schema(
        request=JoinInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: JoinOutput, **error_responses(400, 401, 403, 404, 409, 502, 503)},
    )
    def post(self, request, slug):
        key = idempotency_key(request)
        community = _public_community(slug)
        data = JoinInput(data=request.data)
        data.is_valid(raise_exception=True)
        plan = None
        if data.validated_data.get("plan"):
            plan = EntryPlan.objects.filter(pk=data.validated_data["plan"], community=community).first()
        provider = data.validated_data.get("provider")
        if plan is not None and plan.price > 0:  # refuse a payment that could not start before joining
            provider = payment_precheck(community=community, buyer=request.user, provider_name=provider)
        result = membership_join(
            user=request.user,
            community=community,
            plan=plan,
            referral_code=data.validated_data.get("referral_code"),
            invite_code=data.validated_data.get("invite_code"),
        )
        payment = None
        if result.needs_payment:  # after the join committed: no lock is held across the provider call
            payment = entry_checkout(
                membership_id=result.membership.pk,
                plan_id=plan.pk,
                idempotency_key=key,
                provider_name=provider,
                coupon_id=data.validated_data.get("coupon"),
                coupon_code=data.validated_data.get("coupon_code"),
            )
        membership = selectors.membership_list_for_user(user=request.user).get(pk=result.membership.pk)
        body = {"membership": MembershipOutput(membership).data, "payment": payment}
        return Response(body, status=status.HTTP_201_CREATED)


class MyReferralsApi(APIView):
    @extend_schema(responses={200: ReferralsOutput, **error_responses(401)})
    def get(self, request):
        memberships = list(selectors.membership_list_for_referrals(user=request.user))
        totals = commission_totals_by_membership(membership_ids=[m.pk for m in memberships])
        rows = [
            {
                "community": m.community.slug,
                "referral_code": m.referral_code,
                "invited_count": m.invited_count,
                "commissions": totals[m.pk],
            }
            for m in memberships
        ]
        return Response(ReferralsOutput({"memberships": rows}).data)
