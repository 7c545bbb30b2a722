"""GET, POST /api/v1/me/withdrawals/: the caller's commission withdrawals (提现)."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.api.serializers import MoneyField
from commerce.api.views import idempotency_key
from commerce.models import Withdrawal
from commerce.payments.wechatpay.transfers import transfer_payer
from commerce.selectors import withdrawal_list_for_user
from commerce.services.withdrawals import withdrawal_get_own, withdrawal_request
from shequn_backend.api.fields import MoneyInput, StrictCharField
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.schema import IDEMPOTENCY_HEADER, error_responses


class WithdrawalInput(serializers.Serializer):
    amount = MoneyInput(max_value=Decimal("9999999.99"), min_value=Decimal("0.01"))
    real_name = StrictCharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="The payee's real name; WeChat Pay needs it from 2,000 yuan.",
    )


class WithdrawalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    amount = MoneyField()
    fee = MoneyField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Withdrawal.Status.choices)
    package_info = serializers.SerializerMethodField(
        help_text="wx.requestMerchantTransfer's package while the status is awaiting_confirmation."
    )
    mch_id = serializers.SerializerMethodField(
        help_text="wx.requestMerchantTransfer's mchId (the paying merchant) with package_info."
    )
    app_id = serializers.SerializerMethodField(
        help_text="wx.requestMerchantTransfer's appId (the mini-program) with package_info."
    )
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    @staticmethod
    def _confirmable(withdrawal: Withdrawal) -> bool:
        return withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION and bool(withdrawal.package_info)

    def get_package_info(self, withdrawal: Withdrawal) -> str | None:
        return withdrawal.package_info if self._confirmable(withdrawal) else None

    def get_mch_id(self, withdrawal: Withdrawal) -> str | None:
        return transfer_payer()[0] if self._confirmable(withdrawal) else None

    def get_app_id(self, withdrawal: Withdrawal) -> str | None:
        return transfer_payer()[1] if self._confirmable(withdrawal) else None


class MyWithdrawalsApi(SelectorListApi):
    serializer_class = WithdrawalOutput
    model = Withdrawal

    def select(self):
        return withdrawal_list_for_user(user=self.request.user)

    @extend_schema(responses={200: WithdrawalOutput(many=True), **error_responses(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=WithdrawalInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: WithdrawalOutput, **error_responses(400, 401, 409)},
    )
    def post(self, request):
        key = idempotency_key(request)
        data = WithdrawalInput(data=request.data)
        data.is_valid(raise_exception=True)
        withdrawal, _created = withdrawal_request(
            actor=request.user,
            user=request.user,
            amount=data.validated_data["amount"],
            real_name=data.validated_data["real_name"],
            idempotency_key=key,
        )
        # A replay (the same Idempotency-Key) answers as the first answer did: 201, the same withdrawal.
        return Response(WithdrawalOutput(withdrawal).data, status=status.HTTP_201_CREATED)


class MyWithdrawalDetailApi(APIView):
    @extend_schema(responses={200: WithdrawalOutput, **error_responses(401, 404)})
    def get(self, request, withdrawal_id):
        return Response(
            WithdrawalOutput(withdrawal_get_own(user=request.user, withdrawal_id=withdrawal_id)).data
        )
