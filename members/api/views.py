from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from members import selectors
from members.api import serializers as s
from members.models import Address, Community, Membership, PointsEntry
from members.services.addresses import address_create, address_delete, address_update
from members.services.communities import community_create, community_update
from members.services.memberships import membership_approve
from members.services.users import (
    user_authenticate,
    user_bind_wechat,
    user_login_wechat,
    user_password_change,
    user_register,
    user_set_phone_from_wechat,
    user_token,
    user_token_revoke,
    user_tokens_revoke_all,
    user_update_profile,
)
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.public import CachedPublicMixin
from shequn_backend.api.schema import error_responses
from shequn_backend.errors import NotFound


def _token_response(user, http_status=status.HTTP_200_OK) -> Response:
    body = {"token": user_token(user=user), "user": s.UserOutput(user).data}
    return Response(body, status=http_status)


class _LoginThrottled(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"


class RegisterApi(_LoginThrottled):
    @extend_schema(request=s.RegisterInput, responses={201: s.TokenOutput, **error_responses(400, 429)})
    def post(self, request):
        data = s.RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data)
        return _token_response(user, status.HTTP_201_CREATED)


class LoginApi(_LoginThrottled):
    @extend_schema(request=s.LoginInput, responses={200: s.TokenOutput, **error_responses(400, 429)})
    def post(self, request):
        data = s.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _token_response(user_authenticate(**data.validated_data))


class WechatLoginApi(_LoginThrottled):
    @extend_schema(
        request=s.WechatLoginInput, responses={200: s.TokenOutput, **error_responses(400, 429, 502, 503)}
    )
    def post(self, request):
        data = s.WechatLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _token_response(user_login_wechat(code=data.validated_data["code"]))


class WechatBindApi(APIView):
    """Bind the caller's account (made with a password) to their WeChat: then they can pay by WeChat."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=s.WechatLoginInput,
        responses={200: s.UserWrapOutput, **error_responses(400, 401, 409, 429, 502, 503)},
    )
    def post(self, request):
        data = s.WechatLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_bind_wechat(user=request.user, code=data.validated_data["code"], actor=request.user)
        return Response({"user": s.UserOutput(user).data})


class MyPhoneApi(APIView):
    """The phone number the member shares with ``getPhoneNumber``: kept for delivery."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=s.WechatLoginInput, responses={200: s.PhoneOutput, **error_responses(400, 401, 429, 502, 503)}
    )
    def post(self, request):
        data = s.WechatLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_set_phone_from_wechat(
            user=request.user, code=data.validated_data["code"], actor=request.user
        )
        return Response({"phone": user.phone})


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None, **error_responses(401)})
    def post(self, request):
        user_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    @extend_schema(request=None, responses={204: None, **error_responses(401)})
    def post(self, request):
        user_tokens_revoke_all(user=request.user, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeApi(APIView):
    """Every token of the user is revoked (other devices log in again); this device gets a new one."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=s.PasswordChangeInput, responses={200: s.TokenOutput, **error_responses(400, 401, 429)}
    )
    def post(self, request):
        data = s.PasswordChangeInput(data=request.data, context={"user": request.user})
        data.is_valid(raise_exception=True)
        user_password_change(user=request.user, actor=request.user, **data.validated_data)
        return _token_response(request.user)


class MeApi(APIView):
    @extend_schema(responses={200: s.ProfileOutput, **error_responses(401)})
    def get(self, request):
        return Response(s.ProfileOutput(selectors.user_get_with_profile(user_id=request.user.pk)).data)

    @extend_schema(
        request=s.ProfileUpdateInput, responses={200: s.ProfileOutput, **error_responses(400, 401)}
    )
    def patch(self, request):
        data = s.ProfileUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user_update_profile(user=request.user, **data.validated_data)
        return Response(s.ProfileOutput(selectors.user_get_with_profile(user_id=request.user.pk)).data)


# --- Communities (public) ------------------------------------------------------------


class CommunityListApi(CachedPublicMixin, SelectorListApi):
    permission_classes = [AllowAny]
    serializer_class = s.CommunityOutput
    model = Community

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="Name, mission or attribute contains"),
            OpenApiParameter("attribute", str, description="Has this attribute (exact, case-insensitive)"),
        ],
        responses={200: s.CommunityOutput(many=True), **error_responses(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.cached(request, lambda: super(CommunityListApi, self).get(request, *args, **kwargs))

    def select_page(self, *, limit, offset):
        """The page, its count, attributes and plans in one query (PostgreSQL)."""
        params = self.request.query_params
        page = selectors.community_page_public(
            search=params.get("search"), attribute=params.get("attribute"), limit=limit, offset=offset
        )
        return None if page is None else (page[0], s.community_page_bodies(page[1]))

    def select(self):
        params = self.request.query_params
        return selectors.community_list_public(search=params.get("search"), attribute=params.get("attribute"))


def _public_community_body(slug: str) -> dict:
    """The community's public body: one query on PostgreSQL, the serializer elsewhere."""
    try:
        row = selectors.community_row_public(slug=slug)
        if row is not None:
            return s.community_detail_body(row)
        return s.CommunityDetailOutput(selectors.community_get_public(slug=slug)).data
    except Community.DoesNotExist:
        raise NotFound() from None


class CommunityDetailApi(CachedPublicMixin, APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: s.CommunityDetailOutput, **error_responses(404)})
    def get(self, request, slug):
        return self.cached(request, lambda: Response(_public_community_body(slug)))


# --- The caller's own memberships, points and referrals ------------------------------------


class MyMembershipsApi(SelectorListApi):
    serializer_class = s.MembershipOutput
    model = Membership

    def select(self):
        return selectors.membership_list_for_user(user=self.request.user)


class MyPointsApi(SelectorListApi):
    serializer_class = s.PointsEntryOutput
    model = PointsEntry

    def select(self):
        return selectors.points_entries_for_user(user=self.request.user)


def _own_address(request, address_id: int) -> Address:
    try:
        return selectors.address_get_for_user(user=request.user, address_id=address_id)
    except Address.DoesNotExist:
        raise NotFound() from None


class MyAddressListCreateApi(SelectorListApi):
    serializer_class = s.AddressOutput
    model = Address

    def select(self):
        return selectors.address_list_for_user(user=self.request.user)

    @extend_schema(request=s.AddressInput, responses={201: s.AddressOutput, **error_responses(400, 401, 409)})
    def post(self, request):
        data = s.AddressInput(data=request.data)
        data.is_valid(raise_exception=True)
        address = address_create(actor=request.user, user=request.user, **data.validated_data)
        return Response(s.AddressOutput(address).data, status=status.HTTP_201_CREATED)


class MyAddressDetailApi(APIView):
    @extend_schema(
        request=s.AddressInput(partial=True),
        responses={200: s.AddressOutput, **error_responses(400, 401, 404)},
    )
    def patch(self, request, address_id):
        address = _own_address(request, address_id)
        data = s.AddressInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {name: value for name, value in data.validated_data.items() if name in request.data}
        address = address_update(actor=request.user, address=address, **changes)
        return Response(s.AddressOutput(address).data)

    @extend_schema(responses={204: None, **error_responses(401, 404)})
    def delete(self, request, address_id):
        address_delete(actor=request.user, address=_own_address(request, address_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Owner console -------------------------------------------------------------------------


def managed_community(request, slug: str) -> Community:
    """The community if the caller owns or operates it; 404 otherwise (others' communities do not exist)."""
    try:
        return selectors.community_get_for_manager(user=request.user, slug=slug)
    except Community.DoesNotExist:
        raise NotFound() from None


class OwnerCommunityListCreateApi(SelectorListApi):
    serializer_class = s.OwnerCommunityOutput
    model = Community

    def select(self):
        return selectors.community_list_for_manager(user=self.request.user)

    @extend_schema(
        request=s.CommunityInput, responses={201: s.OwnerCommunityOutput, **error_responses(400, 401)}
    )
    def post(self, request):
        data = s.CommunityInput(data=request.data)
        data.is_valid(raise_exception=True)
        community = community_create(actor=request.user, owner=request.user, **data.validated_data)
        return Response(
            s.OwnerCommunityOutput(managed_community(request, community.slug)).data,
            status=status.HTTP_201_CREATED,
        )


class OwnerCommunityDetailApi(APIView):
    @extend_schema(responses={200: s.OwnerCommunityOutput, **error_responses(401, 404)})
    def get(self, request, slug):
        return Response(s.OwnerCommunityOutput(managed_community(request, slug)).data)

    @extend_schema(
        request=s.CommunityUpdateInput,
        responses={200: s.OwnerCommunityOutput, **error_responses(400, 401, 404)},
    )
    def patch(self, request, slug):
        community = managed_community(request, slug)
        data = s.CommunityUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        community_update(actor=request.user, community=community, **data.validated_data)
        return Response(s.OwnerCommunityOutput(managed_community(request, slug)).data)


class OwnerMemberListApi(SelectorListApi):
    serializer_class = s.MemberOutput
    model = Membership

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=[c for c, _ in Membership.Status.choices])],
        responses={200: s.MemberOutput(many=True), **error_responses(401, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def select(self):
        community = managed_community(self.request, self.kwargs["slug"])
        status_ = self.request.query_params.get("status")
        if status_ is not None and status_ not in Membership.Status.values:
            raise ValidationError({"status": [_("Use one of: %s.") % ", ".join(Membership.Status.values)]})
        return selectors.membership_list_for_community(community=community, status=status_)


class OwnerApproveApi(APIView):
    @extend_schema(request=None, responses={200: s.MemberOutput, **error_responses(401, 404, 409)})
    def post(self, request, slug, membership_id):
        community = managed_community(request, slug)
        try:
            membership_approve(actor=request.user, membership_id=membership_id, community=community)
        except Membership.DoesNotExist:
            raise NotFound() from None
        membership = selectors.membership_list_for_community(community=community).get(pk=membership_id)
        return Response(s.MemberOutput(membership).data)
