"""Thin API views: parse with an input serializer, call one service or selector, render an output."""

import logging

from django.db import DatabaseError
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce import errors, selectors
from commerce.api import serializers as s
from commerce.models import Order, Product, Refund
from commerce.payments.base import InvalidWebhook, ProviderUnavailable
from commerce.services.catalog import SkuInput, category_get_by_path, product_create
from commerce.services.checkout import order_checkout
from commerce.services.orders import LineInput, order_cancel
from commerce.services.payments import payment_refresh, payment_summary, webhook_receive
from commerce.services.refunds import entry_refund_request, refund_request
from commerce.services.shipments import LineQuantity, order_confirm_receipt, shipment_create
from members.models import Community
from members.selectors import community_get_for_manager, membership_get_active_by_slug
from shequn_backend.api.exceptions import error_body
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.schema import IDEMPOTENCY_HEADER, error_responses

logger = logging.getLogger(__name__)


def idempotency_key(request) -> str | None:
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 100:
        raise errors.ApplicationError(
            code="validation_error", fields={"Idempotency-Key": [_("At most 100 characters.")]}
        )
    return key or None


def _community(slug: str) -> Community:
    community = Community.objects.filter(slug=slug).first()
    if community is None:
        raise errors.NotFound()
    return community


def _member_context(request, slug: str) -> dict:
    """The caller's active membership of ``slug`` (403 ``membership_required`` otherwise), for pricing.

    One query when the caller is a member (membership, community and tier together); the 404 for
    an unknown community costs a second one.
    """
    membership = membership_get_active_by_slug(user=request.user, slug=slug)
    if membership is None:
        _community(slug)  # 404 if there is no such community
        raise errors.MembershipRequired()
    return {"membership": membership, "tier": membership.tier, "community": membership.community}


def _managed_community(request, slug: str) -> Community:
    try:
        return community_get_for_manager(user=request.user, slug=slug)
    except Community.DoesNotExist:
        raise errors.NotFound() from None


# --- Catalog ------------------------------------------------------------------------------------


class ProductListApi(SelectorListApi):
    serializer_class = s.ProductOutput
    model = Product

    @extend_schema(
        parameters=[
            OpenApiParameter("category", str, description="A category path or its parent, e.g. 生鲜"),
            OpenApiParameter("search", str, description="Title, description or tags contain"),
        ],
        responses={200: s.ProductOutput(many=True), **error_responses(401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), **getattr(self, "member", {})}

    def select_page(self, *, limit, offset):
        """Membership and tier, the page, its count and SKUs in one query (non-members: generic)."""
        params = self.request.query_params
        page = selectors.product_page_for_member(
            user=self.request.user,
            slug=self.kwargs["slug"],
            category=params.get("category"),
            search=params.get("search"),
            limit=limit,
            offset=offset,
        )
        return None if page is None else (page.total, s.product_page_bodies(page))

    def select(self):
        self.member = _member_context(self.request, self.kwargs["slug"])
        params = self.request.query_params
        return selectors.product_list_for_member(
            membership=self.member["membership"], category=params.get("category"), search=params.get("search")
        ).only(*s.ProductOutput.columns)


class ProductDetailApi(APIView):
    @extend_schema(responses={200: s.ProductDetailOutput, **error_responses(401, 403, 404)})
    def get(self, request, slug, product_id):
        member = _member_context(request, slug)
        try:
            product = selectors.product_get_for_member(membership=member["membership"], product_id=product_id)
        except Product.DoesNotExist:
            raise errors.NotFound() from None
        return Response(s.ProductDetailOutput(product, context=member).data)


class OwnerProductListCreateApi(SelectorListApi):
    serializer_class = s.OwnerProductOutput
    model = Product

    @extend_schema(responses={200: s.OwnerProductOutput(many=True), **error_responses(401, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def select(self):
        return selectors.product_list_for_manager(
            community=_managed_community(self.request, self.kwargs["slug"])
        )

    @extend_schema(
        request=s.ProductInput, responses={201: s.OwnerProductOutput, **error_responses(400, 401, 404)}
    )
    def post(self, request, slug):
        community = _managed_community(request, slug)
        data = s.ProductInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["category"] = category_get_by_path(path=values["category"])
        values["skus"] = [SkuInput(**sku) for sku in values["skus"]]
        product = product_create(actor=request.user, community=community, **values)
        product = selectors.product_list_for_manager(community=community).get(pk=product.pk)
        return Response(s.OwnerProductOutput(product).data, status=status.HTTP_201_CREATED)


# --- Orders -------------------------------------------------------------------------------------


def _order_body(order: Order) -> dict:
    return s.OrderOutput(order).data


class OrderListCreateApi(SelectorListApi):
    serializer_class = s.OrderOutput
    model = Order

    @extend_schema(responses={200: s.OrderOutput(many=True), **error_responses(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def select_page(self, *, limit, offset):
        """The page, its count, lines, payments and shipments in one query; two more when an order
        of the page has after-sales."""
        page = selectors.order_page_for_buyer(buyer=self.request.user, limit=limit, offset=offset)
        return None if page is None else (page[0], s.order_page_bodies(page[1]))

    def select(self):
        return selectors.order_list_for_buyer(buyer=self.request.user)

    @extend_schema(
        request=s.OrderInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.OrderOutput, **error_responses(400, 401, 403, 404, 409, 502, 503)},
    )
    def post(self, request):
        key = idempotency_key(request)
        data = s.OrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        # The buyer's membership with its community and tier in one query (and whether the key was
        # used); a non-member's request reads the community (404) and is refused by the checkout (403).
        used = {"key_used": selectors.idempotency_key_used(buyer=request.user, key=key)} if key else None
        slug = data.validated_data["community"]
        membership = membership_get_active_by_slug(user=request.user, slug=slug, annotations=used)
        result = order_checkout(
            actor=request.user,
            buyer=request.user,
            community=membership.community if membership else _community(slug),
            membership=membership,
            key_used=getattr(membership, "key_used", None),
            lines=[
                LineInput(sku_id=line["sku"], quantity=line["quantity"])
                for line in data.validated_data["lines"]
            ],
            referral_code=data.validated_data.get("referral_code") or None,
            idempotency_key=key,
            provider_name=data.validated_data.get("provider"),
            address_id=data.validated_data.get("address"),
            delivery=data.validated_data.get("delivery"),
            coupon_id=data.validated_data.get("coupon"),
            coupon_code=data.validated_data.get("coupon_code"),
        )
        if result.lines is not None:  # a new order: its body from what the checkout wrote
            order = selectors.order_as_placed(order=result.order, lines=result.lines, payment=result.payment)
        else:
            order = selectors.order_get_for_buyer(buyer=request.user, order_id=result.order.pk)
        body = _order_body(order)
        body["payment"] = payment_summary(result.payment)
        # A replay (the same Idempotency-Key) answers as the first answer did: 201, the same order.
        return Response(body, status=status.HTTP_201_CREATED)


def _own_order(request, order_id: int) -> Order:
    try:
        return selectors.order_get_for_buyer(buyer=request.user, order_id=order_id)
    except Order.DoesNotExist:
        raise errors.NotFound() from None


class OrderDetailApi(APIView):
    @extend_schema(responses={200: s.OrderOutput, **error_responses(401, 404)})
    def get(self, request, order_id):
        return Response(_order_body(_own_order(request, order_id)))


class OrderCancelApi(APIView):
    @extend_schema(request=None, responses={200: s.OrderOutput, **error_responses(401, 404, 409)})
    def post(self, request, order_id):
        order_cancel(actor=request.user, order=_own_order(request, order_id))
        return Response(_order_body(_own_order(request, order_id)))


class OrderPaymentApi(APIView):
    """A fresh ``<payment>`` for the caller's unpaid order (WeChat Pay: ``request_payment`` signed anew)."""

    @extend_schema(responses={200: s.OrderPaymentOutput, **error_responses(401, 404, 409, 502, 503)})
    def get(self, request, order_id):
        order = _own_order(request, order_id)
        return Response(payment_summary(payment_refresh(actor=request.user, order_id=order.pk)))


class OrderConfirmReceiptApi(APIView):
    """The buyer received the goods: the order is delivered (once everything has shipped)."""

    @extend_schema(request=None, responses={200: s.OrderOutput, **error_responses(401, 404, 409)})
    def post(self, request, order_id):
        order_confirm_receipt(actor=request.user, order_id=_own_order(request, order_id).pk)
        return Response(_order_body(_own_order(request, order_id)))


class OwnerOrderShipmentsApi(APIView):
    """The owner ships all (or some) of a paid order's goods under one tracking number."""

    @extend_schema(
        request=s.ShipmentInput, responses={201: s.ShipmentOutput, **error_responses(400, 401, 404, 409)}
    )
    def post(self, request, order_id):
        if not selectors.order_list_for_manager(user=request.user).filter(pk=order_id).exists():
            raise errors.NotFound()
        data = s.ShipmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        lines = data.validated_data.get("lines")
        shipment = shipment_create(
            actor=request.user,
            order_id=order_id,
            carrier=data.validated_data["carrier"],
            tracking_no=data.validated_data["tracking_no"],
            lines=None
            if lines is None
            else [LineQuantity(line["line_id"], line["quantity"]) for line in lines],
        )
        return Response(s.ShipmentOutput(shipment).data, status=status.HTTP_201_CREATED)


def _refund_body(refund: Refund) -> dict:
    return s.RefundOutput(Refund.objects.select_related("order").get(pk=refund.pk)).data


class OrderEntryRefundApi(APIView):
    """The buyer's own refund of an entry fee within the plan's unconditional refund window."""

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.RefundOutput, **error_responses(400, 401, 404, 409, 502, 503)},
    )
    def post(self, request, order_id):
        idempotency_key(request)  # validated; an entry fee is refunded once, so any retry is a replay
        refund = entry_refund_request(actor=request.user, order=_own_order(request, order_id))
        return Response(_refund_body(refund), status=status.HTTP_201_CREATED)


class OwnerOrderRefundApi(APIView):
    @extend_schema(
        request=s.RefundInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.RefundOutput, **error_responses(400, 401, 404, 409, 502, 503)},
    )
    def post(self, request, order_id):
        if not selectors.order_list_for_manager(user=request.user).filter(pk=order_id).exists():
            raise errors.NotFound()
        key = idempotency_key(request)
        data = s.RefundInput(data=request.data)
        data.is_valid(raise_exception=True)
        refund = refund_request(
            actor=request.user,
            order_id=order_id,
            amount=data.validated_data.get("amount"),
            reason=data.validated_data["reason"],
            source=Refund.Source.OWNER,
            idempotency_key=key,
        )
        return Response(_refund_body(refund), status=status.HTTP_201_CREATED)


# --- Provider webhooks --------------------------------------------------------------------------


class StripeWebhookApi(APIView):
    """Stripe's deliveries: signed, not authenticated. Stored raw, processed once per event id."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    parser_classes: list = []

    @extend_schema(
        request={"application/json": dict},
        parameters=[
            OpenApiParameter(
                "Stripe-Signature",
                str,
                location=OpenApiParameter.HEADER,
                required=True,
                description="Stripe's signature of the raw body (400 when it does not verify).",
            )
        ],
        responses={200: s.WebhookOutput, **error_responses(400, 409)},
    )
    def post(self, request):
        try:
            event = webhook_receive(provider_name="stripe", payload=request.body, headers=request.headers)
        except InvalidWebhook:
            body = error_body("invalid_webhook", _("The signature or the payload is not valid."))
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response({"received": True, "event_id": event.event_id, "outcome": event.outcome})


def _wechatpay_fail(message: str, status_code: int) -> Response:
    return Response({"code": "FAIL", "message": message}, status=status_code)


class WechatPayNotifyApi(APIView):
    """WeChat Pay's notifications (payments and refunds): signed and encrypted, not authenticated.

    Success is 204 with an empty body; anything else is ``{"code": "FAIL", "message"}``
    with a 4xx (not signed by WeChat Pay, stale) or a 5xx (ours, temporary), and
    WeChat Pay delivers it again later. Never throttled: a dropped retry is a lost payment.
    """

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []
    provider_callback = True

    @extend_schema(request={"application/json": dict}, responses=s.PROVIDER_CALLBACK_RESPONSES)
    def post(self, request):
        try:
            webhook_receive(provider_name="wechatpay", payload=request.body, headers=request.headers)
        except InvalidWebhook:
            return _wechatpay_fail(_("The signature, serial or timestamp is not valid."), 401)
        except (errors.ApplicationError, ProviderUnavailable, DatabaseError) as exc:
            logger.warning("WeChat Pay notification not processed, WeChat will retry: %s", exc)
            return _wechatpay_fail(_("Not processed right now: deliver it again later."), 503)
        return HttpResponse(status=204)
