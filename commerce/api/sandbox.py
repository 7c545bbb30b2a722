"""The sandbox payment provider's endpoints (demo and local runs; 404 unless ``PAYMENT_SANDBOX_ENABLED``).

``POST /payments/sandbox/pay/`` is the sandbox's cashier: the buyer pays an
order's waiting sandbox payment, and the sandbox notifies the success
asynchronously. ``POST /payments/sandbox/transfer/confirm/`` is the payee's
confirmation of a withdrawal's transfer (``wx.requestMerchantTransfer``).
``POST /payments/sandbox/notify/`` receives the sandbox's signed
notifications, answering as WeChat Pay's notify endpoint does.
"""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce import errors
from commerce.api.serializers import PROVIDER_CALLBACK_RESPONSES
from commerce.models import Withdrawal
from commerce.payments import sandbox
from commerce.payments.base import InvalidWebhook
from commerce.services.payments import webhook_receive
from commerce.services.sandbox import sandbox_confirm_withdrawal, sandbox_pay_order
from shequn_backend.api.schema import error_responses


class SandboxPayInput(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class SandboxPayOutput(serializers.Serializer):
    order_id = serializers.IntegerField()
    trade_state = serializers.CharField(help_text=_("The sandbox's state of the payment: SUCCESS."))
    order_status = serializers.CharField(
        help_text=_("The order's status now: paid once the sandbox's notification has been applied.")
    )


class SandboxTransferConfirmInput(serializers.Serializer):
    withdrawal_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class SandboxTransferConfirmOutput(serializers.Serializer):
    withdrawal_id = serializers.IntegerField()
    transfer_state = serializers.CharField(help_text=_("The sandbox's state of the transfer: SUCCESS."))
    withdrawal_status = serializers.ChoiceField(
        choices=Withdrawal.Status.choices,
        help_text=_("The withdrawal's status now: paid once the sandbox's notification has been applied."),
    )


def _sandbox_enabled() -> None:
    if not settings.PAYMENT_SANDBOX_ENABLED:
        raise errors.NotFound()


class SandboxPayApi(APIView):
    """Pay your order's sandbox payment, as a member would in WeChat's cashier (demo only).

    The sandbox then notifies the payment, signed, through the same path as
    WeChat Pay's notifications; the order becomes ``paid`` when it is applied
    (at once in the embedded default, within seconds with a Celery worker).
    """

    @extend_schema(
        request=SandboxPayInput,
        responses={202: SandboxPayOutput, **error_responses(400, 401, 404, 409)},
    )
    def post(self, request):
        _sandbox_enabled()
        data = SandboxPayInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = sandbox_pay_order(buyer=request.user, order_id=data.validated_data["order_id"])
        return Response(body, status=status.HTTP_202_ACCEPTED)


class SandboxTransferConfirmApi(APIView):
    """Confirm your approved withdrawal's sandbox transfer, as ``wx.requestMerchantTransfer`` would (demo).

    The sandbox then notifies the finished transfer, signed, through the same
    path as WeChat Pay's notifications; the withdrawal becomes ``paid`` when it
    is applied (at once in the embedded default).
    """

    @extend_schema(
        request=SandboxTransferConfirmInput,
        responses={202: SandboxTransferConfirmOutput, **error_responses(400, 401, 404, 409)},
    )
    def post(self, request):
        _sandbox_enabled()
        data = SandboxTransferConfirmInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = sandbox_confirm_withdrawal(
            user=request.user, withdrawal_id=data.validated_data["withdrawal_id"]
        )
        return Response(body, status=status.HTTP_202_ACCEPTED)


class SandboxNotifyApi(APIView):
    """The sandbox's signed notifications (``TRANSACTION.SUCCESS``, ``REFUND.SUCCESS``,
    ``MCHTRANSFER.BILL.FINISHED``).

    Answers like WeChat Pay's notify endpoint: 204 with no body when applied
    (or already applied), ``{"code": "FAIL", "message"}`` with 4xx/5xx otherwise.
    """

    permission_classes = [AllowAny]
    authentication_classes: list = []
    parser_classes: list = []
    provider_callback = True

    @extend_schema(
        request={"application/json": dict},
        responses={**PROVIDER_CALLBACK_RESPONSES, **error_responses(404)},  # 404: the sandbox is off
    )
    def post(self, request):
        _sandbox_enabled()
        try:
            webhook_receive(provider_name=sandbox.NAME, payload=request.body, headers=request.headers)
        except InvalidWebhook as exc:
            return Response({"code": "FAIL", "message": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except errors.ApplicationError as exc:  # e.g. the payment is still being recorded
            body = {"code": "FAIL", "message": str(exc.message)}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(status=status.HTTP_204_NO_CONTENT)
