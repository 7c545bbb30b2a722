"""The member's coupons: GET /api/v1/me/coupons/ and claiming one with its code."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce import errors, selectors
from commerce.api.serializers import CouponClaimInput, MemberCouponOutput
from commerce.models import MemberCoupon
from commerce.services.coupons import coupon_claim
from members.models import Community
from members.selectors import membership_get_active
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.schema import error_responses


class MyCouponsApi(SelectorListApi):
    serializer_class = MemberCouponOutput
    model = MemberCoupon

    @extend_schema(
        parameters=[
            OpenApiParameter("community", str, description="Only this community's coupons (its slug).")
        ],
        responses={200: MemberCouponOutput(many=True), **error_responses(401)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def select(self):
        return selectors.member_coupon_list_for_user(
            user=self.request.user, community_slug=self.request.query_params.get("community")
        )


class CouponClaimApi(APIView):
    @extend_schema(
        request=CouponClaimInput,
        responses={201: MemberCouponOutput, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request):
        data = CouponClaimInput(data=request.data)
        data.is_valid(raise_exception=True)
        community = Community.objects.filter(slug=data.validated_data["community"]).first()
        if community is None:
            raise errors.NotFound()
        membership = membership_get_active(user=request.user, community=community)
        if membership is None:
            raise errors.MembershipRequired()
        grant = coupon_claim(actor=request.user, membership=membership, code=data.validated_data["code"])
        grant = selectors.member_coupon_list_for_user(user=request.user).get(pk=grant.pk)
        body = MemberCouponOutput(grant, context={"now": timezone.now()}).data
        return Response(body, status=status.HTTP_201_CREATED)
