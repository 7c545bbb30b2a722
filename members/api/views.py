from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from members.api import serializers as s
from members.selectors import user_get_with_profile
from members.services.users import (
    user_authenticate,
    user_login_wechat,
    user_register,
    user_token,
    user_update_profile,
)
from shequn_backend.api.schema import error_responses


def _token_response(user, http_status=status.HTTP_200_OK) -> Response:
    body = {"token": user_token(user=user), "user": s.UserOutput(user).data}
    return Response(body, status=http_status)


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=s.RegisterInput, responses={201: s.TokenOutput, **error_responses(400, 429)})
    def post(self, request):
        data = s.RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data)
        return _token_response(user, status.HTTP_201_CREATED)


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=s.LoginInput, responses={200: s.TokenOutput, **error_responses(400, 429)})
    def post(self, request):
        data = s.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _token_response(user_authenticate(**data.validated_data))


class WechatLoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=s.WechatLoginInput, responses={200: s.TokenOutput, **error_responses(400, 429, 503)}
    )
    def post(self, request):
        data = s.WechatLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _token_response(user_login_wechat(code=data.validated_data["code"]))


class MeApi(APIView):
    @extend_schema(responses={200: s.ProfileOutput, **error_responses(401)})
    def get(self, request):
        return Response(s.ProfileOutput(user_get_with_profile(user_id=request.user.pk)).data)

    @extend_schema(
        request=s.ProfileUpdateInput, responses={200: s.ProfileOutput, **error_responses(400, 401)}
    )
    def patch(self, request):
        data = s.ProfileUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user_update_profile(user=request.user, **data.validated_data)
        return Response(s.ProfileOutput(user_get_with_profile(user_id=request.user.pk)).data)
