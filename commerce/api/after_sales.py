"""After-sale requests (售后): the member asks, ships goods back or withdraws; the owner decides."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce import errors, selectors
from commerce.api import serializers as s
from commerce.api.views import _own_order, idempotency_key
from commerce.models import AfterSale
from commerce.services.after_sales import (
    LineQuantity,
    after_sale_approve,
    after_sale_cancel,
    after_sale_receive,
    after_sale_reject,
    after_sale_request,
    after_sale_return_ship,
)
from shequn_backend.api.schema import IDEMPOTENCY_HEADER, error_responses


def _body(after_sale_id: int) -> dict:
    return s.AfterSaleOutput(AfterSale.objects.prefetch_related("lines").get(pk=after_sale_id)).data


def _own_after_sale(request, order_id: int, after_sale_id: int) -> AfterSale:
    after_sale = (
        selectors.after_sale_list_for_buyer(buyer=request.user, order_id=order_id)
        .filter(pk=after_sale_id)
        .first()
    )
    if after_sale is None:
        raise errors.NotFound()
    return after_sale


def _managed_after_sale(request, after_sale_id: int) -> AfterSale:
    after_sale = selectors.after_sale_list_for_manager(user=request.user).filter(pk=after_sale_id).first()
    if after_sale is None:
        raise errors.NotFound()
    return after_sale


class OrderAfterSalesApi(APIView):
    """The caller's after-sale requests on their order, and a new one."""

    @extend_schema(responses={200: s.AfterSaleOutput(many=True), **error_responses(401, 404)})
    def get(self, request, order_id):
        order = _own_order(request, order_id)
        rows = selectors.after_sale_list_for_buyer(buyer=request.user, order_id=order.pk)
        return Response(s.AfterSaleOutput(rows, many=True).data)

    @extend_schema(
        request=s.AfterSaleInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.AfterSaleOutput, **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, order_id):
        key = idempotency_key(request)
        order = _own_order(request, order_id)
        data = s.AfterSaleInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        after_sale = after_sale_request(
            actor=request.user,
            order_id=order.pk,
            type=values["type"],
            lines=[LineQuantity(line["line_id"], line["quantity"]) for line in values["lines"]],
            reason=values["reason"],
            amount=values.get("amount"),
            idempotency_key=key,
        )
        return Response(_body(after_sale.pk), status=status.HTTP_201_CREATED)


class OrderAfterSaleReturnApi(APIView):
    """The member sent the goods back: carrier and tracking number."""

    @extend_schema(
        request=s.AfterSaleReturnInput,
        responses={200: s.AfterSaleOutput, **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, order_id, after_sale_id):
        after_sale = _own_after_sale(request, order_id, after_sale_id)
        data = s.AfterSaleReturnInput(data=request.data)
        data.is_valid(raise_exception=True)
        after_sale_return_ship(actor=request.user, after_sale_id=after_sale.pk, **data.validated_data)
        return Response(_body(after_sale.pk))


class OrderAfterSaleCancelApi(APIView):
    """The member withdraws a request nothing was refunded for yet."""

    @extend_schema(request=None, responses={200: s.AfterSaleOutput, **error_responses(401, 404, 409)})
    def post(self, request, order_id, after_sale_id):
        after_sale = _own_after_sale(request, order_id, after_sale_id)
        after_sale_cancel(actor=request.user, after_sale_id=after_sale.pk)
        return Response(_body(after_sale.pk))


def _decide(request, after_sale_id: int, input_class, decide) -> Response:
    """An owner's decision on a request they manage: ``decide`` gets the validated body."""
    after_sale = _managed_after_sale(request, after_sale_id)
    data = input_class(data=request.data)
    data.is_valid(raise_exception=True)
    decide(actor=request.user, after_sale_id=after_sale.pk, **data.validated_data)
    return Response(_body(after_sale.pk))


class OwnerAfterSaleApproveApi(APIView):
    """Approve: a refund-only request is refunded at once; a return waits for the goods."""

    @extend_schema(
        request=s.AfterSaleDecisionInput,
        responses={200: s.AfterSaleOutput, **error_responses(400, 401, 404, 409, 502, 503)},
    )
    def post(self, request, after_sale_id):
        return _decide(request, after_sale_id, s.AfterSaleDecisionInput, after_sale_approve)


class OwnerAfterSaleRejectApi(APIView):
    @extend_schema(
        request=s.AfterSaleRejectInput,
        responses={200: s.AfterSaleOutput, **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, after_sale_id):
        return _decide(request, after_sale_id, s.AfterSaleRejectInput, after_sale_reject)


class OwnerAfterSaleReceiveApi(APIView):
    """The returned goods came back: the refund goes out (``restock`` puts them back into stock)."""

    @extend_schema(
        request=s.AfterSaleReceiveInput,
        responses={200: s.AfterSaleOutput, **error_responses(400, 401, 404, 409, 502, 503)},
    )
    def post(self, request, after_sale_id):
        return _decide(request, after_sale_id, s.AfterSaleReceiveInput, after_sale_receive)
