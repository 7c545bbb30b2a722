"""Small input and output serializers, one per operation. Outputs read prefetched rows only."""

from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

from django.db import DatabaseError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from commerce.models import AfterSale, Category, Coupon, MemberCoupon, Order, Payment, Product
from commerce.models.catalog import delivery_for_kind
from commerce.payments.base import ONLINE_PROVIDERS, SHOWN_PROVIDERS
from commerce.pricing import money, tier_price
from commerce.selectors import (
    ProductPage,
    after_sales_by_order,
    order_payment,
    orders_prefetch_fulfilment,
)
from commerce.services.orders import MAX_LINES, MAX_QUANTITY
from commerce.services.payments import payment_summary
from commerce.services.shipments import TRACKING_NO
from shequn_backend.api.fields import (
    MONEY_OUTPUT_PATTERN,
    DateTimeField,
    HotInputSerializer,
    MoneyInput,
    StrictBooleanField,
    StrictCharField,
)

MAX_ID = 2**63 - 1


@extend_schema_field({"type": "string", "pattern": MONEY_OUTPUT_PATTERN, "example": "99.00"})
class MoneyField(serializers.Field):
    """A money string with two decimals, e.g. ``"99.00"``."""

    def to_representation(self, value):
        return money(value)


# --- Catalog ----------------------------------------------------------------------------------


def _visible_skus(product: Product) -> list:
    return list(product.skus.all())


class SkuOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price = serializers.CharField(help_text="Price for the caller's tier.")
    list_price = serializers.CharField()
    available = serializers.IntegerField()

    def to_representation(self, sku):
        return sku_body(sku, tier=self.context.get("tier"))


def sku_body(sku, *, tier) -> dict:
    """A SKU as ``SkuOutput`` documents it, built directly: product lists build one per SKU per row."""
    return {
        "id": sku.pk,
        "name": sku.name,
        "price": money(tier_price(list_price=sku.price, tier=tier)),
        "list_price": money(sku.price),
        "available": sku.stock,
    }


class ProductOutput(serializers.Serializer):
    # The product columns ``to_representation`` reads: lists load only these (no description, tags).
    columns = ("id", "community_id", "title", "category__path", "kind", "delivery_kind", "min_tier")

    id = serializers.IntegerField()
    title = serializers.CharField()
    category = serializers.CharField(help_text="Category path, e.g. 生鲜/水果.")
    kind = serializers.ChoiceField(choices=Product.Kind.choices)
    delivery_kind = serializers.ChoiceField(choices=Product.Delivery.choices)
    price = serializers.CharField(allow_null=True, help_text="Lowest SKU price for the caller's tier.")
    list_price = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    skus = SkuOutput(many=True)
    min_tier = serializers.IntegerField(allow_null=True)

    def to_representation(self, product):
        tier = self.context.get("tier")
        skus = _visible_skus(product)
        cheapest = min((sku.price for sku in skus), default=None)
        return {
            "id": product.pk,
            "title": product.title,
            "category": product.category.path,
            "kind": product.kind,
            "delivery_kind": product.delivery,
            "price": money(tier_price(list_price=cheapest, tier=tier)) if cheapest is not None else None,
            "list_price": money(cheapest) if cheapest is not None else None,
            "currency": skus[0].currency if skus else "CNY",
            "skus": [sku_body(sku, tier=tier) for sku in skus],
            "min_tier": product.min_tier,
        }


class ProductDetailOutput(ProductOutput):
    description = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    starts_at = DateTimeField(allow_null=True)
    location = serializers.CharField()
    capacity = serializers.IntegerField(allow_null=True)

    def to_representation(self, product):
        body = super().to_representation(product)
        body.update(
            description=product.description,
            tags=list(product.tags),
            starts_at=DateTimeField().to_representation(product.starts_at) if product.starts_at else None,
            location=product.location,
            capacity=product.capacity,
        )
        return body


class FitOutput(serializers.Serializer):
    audience_match = serializers.FloatField()
    trust = serializers.FloatField()
    score = serializers.FloatField()
    level = serializers.ChoiceField(choices=["fit", "caution", "mismatch"])
    warning = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())


def fit_of(product: Product) -> dict | None:
    """Trust's assessment of the listing, through the relation trust declares; None until it exists."""
    fit = getattr(product, "fit", None)
    if fit is None:
        return None
    if hasattr(fit, "as_dict"):
        return fit.as_dict()
    return {
        name: getattr(fit, name, None)
        for name in ("audience_match", "trust", "score", "level", "warning", "reasons")
    }


class OwnerSkuOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price = MoneyField()
    stock = serializers.IntegerField()
    is_active = serializers.BooleanField()


class OwnerProductOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField(source="category.path")
    tags = serializers.ListField(child=serializers.CharField())
    kind = serializers.ChoiceField(choices=Product.Kind.choices)
    delivery_kind = serializers.ChoiceField(choices=Product.Delivery.choices, source="delivery")
    currency = serializers.SerializerMethodField()
    skus = OwnerSkuOutput(many=True)
    min_tier = serializers.IntegerField(allow_null=True)
    repurchase_cycle_days = serializers.IntegerField(allow_null=True)
    return_window_days = serializers.IntegerField(allow_null=True)
    starts_at = DateTimeField(allow_null=True)
    location = serializers.CharField()
    capacity = serializers.IntegerField(allow_null=True)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    fit = serializers.SerializerMethodField()

    def get_currency(self, product) -> str:
        return "CNY"

    @extend_schema_field(FitOutput(allow_null=True))
    def get_fit(self, product):
        return fit_of(product)


class SkuInput(serializers.Serializer):
    name = StrictCharField(max_length=64)
    price = MoneyInput(max_value=Decimal("9999999.99"))
    stock = serializers.IntegerField(min_value=0, max_value=1_000_000)


class CategoryPathField(StrictCharField):
    """The path of an active category; the schema lists the paths there are when it is generated."""


class CategoryPathFieldExtension(OpenApiSerializerFieldExtension):
    target_class = CategoryPathField

    def map_serializer_field(self, auto_schema, direction):
        try:  # the deploy checks generate the schema too, possibly without a database
            paths = list(
                Category.objects.filter(is_active=True).values_list("path", flat=True).order_by("path")
            )
        except DatabaseError:
            paths = []
        return {"type": "string", "enum": paths} if paths else {"type": "string", "maxLength": 200}


class ProductInput(serializers.Serializer):
    title = StrictCharField(max_length=120)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    category = CategoryPathField(max_length=200, help_text="A category path, e.g. 生鲜/水果.")
    tags = serializers.ListField(
        child=StrictCharField(max_length=32), max_length=20, required=False, default=list
    )
    kind = serializers.ChoiceField(choices=Product.Kind.choices, default=Product.Kind.GOODS)
    delivery_kind = serializers.ChoiceField(
        choices=Product.Delivery.choices,
        required=False,
        help_text="Goods ship (default) or are virtual; events are always tickets.",
    )
    skus = serializers.ListField(child=SkuInput(), min_length=1, max_length=20)
    min_tier = serializers.IntegerField(min_value=0, max_value=1000, required=False, allow_null=True)
    repurchase_cycle_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True
    )
    return_window_days = serializers.IntegerField(min_value=0, max_value=365, required=False, allow_null=True)
    starts_at = DateTimeField(required=False, allow_null=True)
    location = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


# --- Orders -----------------------------------------------------------------------------------


class OrderLineInput(HotInputSerializer):
    sku = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderInput(HotInputSerializer):
    community = serializers.SlugField(max_length=50)
    lines = serializers.ListField(child=OrderLineInput(), min_length=1, max_length=MAX_LINES)
    referral_code = serializers.CharField(max_length=16, required=False, allow_blank=True, allow_null=True)
    provider = serializers.ChoiceField(choices=ONLINE_PROVIDERS, required=False)
    address = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        help_text="One of your addresses; required for express.",
    )
    coupon = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="One of your coupons (GET /me/coupons/)."
    )
    coupon_code = serializers.CharField(
        max_length=32,
        required=False,
        help_text="Claim a coupon with its code and apply it to this order (instead of coupon).",
    )

    delivery = serializers.ChoiceField(
        choices=[Order.Delivery.EXPRESS, Order.Delivery.PICKUP],
        required=False,
        help_text="For goods that ship: express (default with an address) or pickup.",
    )


class RequestPaymentOutput(serializers.Serializer):
    """Exactly what the mini-program passes to ``wx.requestPayment``."""

    timeStamp = serializers.CharField()
    nonceStr = serializers.CharField()
    package = serializers.CharField()
    signType = serializers.CharField()
    paySign = serializers.CharField()


class OrderPaymentOutput(serializers.Serializer):
    order_id = serializers.IntegerField()
    provider = serializers.ChoiceField(choices=SHOWN_PROVIDERS)
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    amount = serializers.CharField()
    currency = serializers.CharField()
    client_secret = serializers.CharField(allow_null=True)
    request_payment = RequestPaymentOutput(allow_null=True)


class OrderLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.IntegerField(source="sku_id", allow_null=True)
    title = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = MoneyField()
    line_total = MoneyField()
    discount = MoneyField(help_text="This line's share of the coupon discount.")
    paid_amount = MoneyField(help_text="line_total - discount: what this line costs the buyer.")


class OrderAddressOutput(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField()
    province = serializers.CharField()
    city = serializers.CharField()
    district = serializers.CharField()
    detail = serializers.CharField()


class ShipLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1, max_value=MAX_ID, source="line_id")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class ShipmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    carrier = serializers.CharField()
    tracking_no = serializers.CharField()
    shipped_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)
    lines = ShipLineSerializer(many=True)


class ShipmentInput(serializers.Serializer):
    carrier = serializers.RegexField(
        r"^[A-Za-z][A-Za-z0-9_]{1,19}$",
        max_length=20,
        help_text="WeChat's delivery id: SF, ZTO, YTO, JTSD ...",
    )
    tracking_no = serializers.RegexField(TRACKING_NO.pattern, max_length=40)
    lines = ShipLineSerializer(many=True, required=False, help_text="Leave out to ship all unshipped lines.")


class AfterSaleLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1, max_value=MAX_ID, source="line_id")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class AfterSaleInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=AfterSale.Type.choices)
    lines = AfterSaleLineSerializer(many=True, min_length=1, max_length=MAX_LINES)
    reason = StrictCharField(max_length=500)
    amount = MoneyInput(
        max_value=Decimal("9999999999.99"),
        min_value=Decimal("0.01"),
        required=False,
        allow_null=True,
        help_text="Defaults to what the units were paid; never more.",
    )


class AfterSaleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=AfterSale.Type.choices)
    status = serializers.ChoiceField(choices=AfterSale.Status.choices)
    amount = MoneyField()
    currency = serializers.CharField()
    reason = serializers.CharField()
    decision_reason = serializers.CharField(help_text="The owner's reason, if any.")
    lines = AfterSaleLineSerializer(many=True)
    return_address = serializers.CharField(allow_null=True, help_text="Where to send the goods back.")
    carrier = serializers.CharField(allow_null=True)
    tracking_no = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, after_sale):
        body = super().to_representation(after_sale)
        for name in ("return_address", "carrier", "tracking_no"):
            body[name] = body[name] or None
        return body


class AfterSaleReturnInput(serializers.Serializer):
    carrier = serializers.RegexField(
        r"^[A-Za-z][A-Za-z0-9_]{1,19}$", max_length=20, help_text="WeChat's delivery id: SF, ZTO ..."
    )
    tracking_no = serializers.RegexField(TRACKING_NO.pattern, max_length=40)


class AfterSaleDecisionInput(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class AfterSaleRejectInput(serializers.Serializer):
    reason = StrictCharField(max_length=500, help_text="Told to the member.")


class AfterSaleReceiveInput(AfterSaleDecisionInput):
    restock = StrictBooleanField(
        required=False, default=False, help_text="Put the returned goods back into stock."
    )


class CouponTermsOutput(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Coupon.Kind.choices)
    amount_off = MoneyField(allow_null=True)
    percent_off = serializers.DecimalField(
        max_digits=5, decimal_places=2, allow_null=True, coerce_to_string=True
    )
    max_discount = MoneyField(allow_null=True)
    min_spend = MoneyField()
    currency = serializers.CharField()
    scope = serializers.ChoiceField(choices=Coupon.Scope.choices)
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()


class OrderCouponOutput(serializers.Serializer):
    """The member's coupon applied to an order."""

    id = serializers.IntegerField()
    name = serializers.CharField(source="coupon.name")
    kind = serializers.ChoiceField(choices=Coupon.Kind.choices, source="coupon.kind")


class MemberCouponOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text='Send it as "coupon" with an order or a paid join.')
    community = serializers.SlugField(source="membership.community.slug")
    status = serializers.ChoiceField(
        choices=[*MemberCoupon.Status.choices, ("expired", "Expired")],
        help_text="available, reserved (by an unpaid order), used, revoked, or expired.",
    )
    source = serializers.ChoiceField(choices=MemberCoupon.Source.choices)
    coupon = CouponTermsOutput()
    order_id = serializers.IntegerField(allow_null=True)
    issued_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, grant):
        data = super().to_representation(grant)
        if grant.status == MemberCoupon.Status.AVAILABLE and grant.coupon.valid_until <= self.context["now"]:
            data["status"] = "expired"
        return data


class CouponClaimInput(serializers.Serializer):
    community = serializers.SlugField(max_length=50)
    code = serializers.CharField(max_length=32)


_DATETIME = serializers.DateTimeField()
_ADDRESS_KEYS = tuple(OrderAddressOutput().fields)


def _time(value):
    return None if value is None else _DATETIME.to_representation(value)


class _OrderListOutput(serializers.ListSerializer):
    def to_representation(self, data):
        return super().to_representation(orders_prefetch_fulfilment(list(data)))


class OrderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    community = serializers.SlugField(source="community.slug")
    status = serializers.ChoiceField(choices=Order.Status.choices)
    payment_status = serializers.ChoiceField(choices=Order.PaymentStatus.choices)
    fulfilment_status = serializers.ChoiceField(choices=Order.FulfilmentStatus.choices)
    kind = serializers.ChoiceField(choices=Order.Kind.choices)
    total = MoneyField(help_text="What the buyer pays: the lines' totals less the discount.")
    discount = MoneyField(source="discount_total")
    coupon = serializers.SerializerMethodField()
    currency = serializers.CharField()
    amount_paid = MoneyField()
    amount_refunded = MoneyField()
    lines = OrderLineOutput(many=True)
    payment = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    hold_expires_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    delivery = serializers.ChoiceField(choices=Order.Delivery.choices)
    address = OrderAddressOutput(allow_null=True)
    shipments = ShipmentOutput(many=True)
    after_sales = AfterSaleOutput(many=True)

    class Meta:
        list_serializer_class = _OrderListOutput

    @extend_schema_field(OrderCouponOutput(allow_null=True))
    def get_coupon(self, order):
        return None if order.coupon_id is None else OrderCouponOutput(order.coupon).data

    def to_representation(self, order):
        """The fields above, built directly (order lists render 20 orders with lines and shipments).

        Times go through DRF's own DateTimeField, money through ``money``: the same
        text the declared fields would give, without a field walk per value.
        """
        if not isinstance(self.parent, _OrderListOutput):
            orders_prefetch_fulfilment([order])
        address = order.address
        after_sales = order.after_sales.all()
        return {
            "id": order.pk,
            "community": order.community.slug,
            "status": order.status,
            "payment_status": order.payment_status,
            "fulfilment_status": order.fulfilment_status,
            "kind": order.kind,
            "total": money(order.total),
            "discount": money(order.discount_total),
            "coupon": self.get_coupon(order),
            "currency": order.currency,
            "amount_paid": money(order.amount_paid),
            "amount_refunded": money(order.amount_refunded),
            "lines": [
                {
                    "id": line.pk,
                    "sku": line.sku_id,
                    "title": line.title,
                    "quantity": line.quantity,
                    "unit_price": money(line.unit_price),
                    "line_total": money(line.line_total),
                    "discount": money(line.discount),
                    "paid_amount": money(line.paid_amount),
                }
                for line in order.lines.all()
            ],
            "payment": self.get_payment(order),
            "created_at": _time(order.created_at),
            "hold_expires_at": _time(order.hold_expires_at),
            "paid_at": _time(order.paid_at),
            "delivery": order.delivery,
            "address": None if address is None else {key: str(address[key]) for key in _ADDRESS_KEYS},
            "shipments": [
                {
                    "id": shipment.pk,
                    "carrier": shipment.carrier,
                    "tracking_no": shipment.tracking_no,
                    "shipped_at": _time(shipment.shipped_at),
                    "confirmed_at": _time(shipment.confirmed_at),
                    "lines": [
                        {"line": ship_line.line_id, "quantity": ship_line.quantity}
                        for ship_line in shipment.lines.all()
                    ],
                }
                for shipment in order.shipments.all()
            ],
            "after_sales": AfterSaleOutput(after_sales, many=True).data if after_sales else [],
        }

    @extend_schema_field(OrderPaymentOutput(allow_null=True))
    def get_payment(self, order):
        return payment_summary(order_payment(order))


class RefundInput(serializers.Serializer):
    amount = MoneyInput(
        max_value=Decimal("9999999999.99"), min_value=Decimal("0.01"), required=False, allow_null=True
    )
    reason = StrictCharField(max_length=500)


class RefundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    status = serializers.CharField()
    amount = MoneyField()
    currency = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    order_status = serializers.CharField(source="order.status")
    order_amount_refunded = MoneyField(source="order.amount_refunded")


class WebhookOutput(serializers.Serializer):
    received = serializers.BooleanField()
    event_id = serializers.CharField()
    outcome = serializers.CharField()


class WechatPayFailOutput(serializers.Serializer):
    """What WeChat Pay expects from a notify URL that did not take a notification (it retries)."""

    code = serializers.CharField()
    message = serializers.CharField()


# WeChat Pay's notify contract (the sandbox answers the same way): 204 and no body when taken.
PROVIDER_CALLBACK_RESPONSES = {
    204: OpenApiResponse(description="Taken (or taken before): nothing more to send."),
    **{
        code: OpenApiResponse(response=WechatPayFailOutput, description=description)
        for code, description in (
            (400, "Unreadable, or not signed by the provider: not taken."),
            (401, "The signature, serial or timestamp does not verify: not taken."),
            (503, "Not processed right now: the provider delivers it again later."),
        )
    },
}


# --- List pages from rows (issue 19) -------------------------------------------------------------
# ``ProductListApi`` and ``OrderListCreateApi`` read their page in one query of tuples and JSON
# (``selectors.product_page_for_member``, ``selectors.order_page_for_buyer``); these build the very
# bodies ``ProductOutput`` and ``OrderOutput`` give (tests compare them), without model instances.


def product_page_bodies(page: ProductPage) -> list[dict]:
    """``ProductOutput`` bodies of a ``ProductPage``'s rows."""
    tier = None if page.discount_percent is None else SimpleNamespace(discount_percent=page.discount_percent)
    prices: dict[str, str] = {}

    def price(list_price: str) -> str:
        found = prices.get(list_price)
        if found is None:
            found = prices[list_price] = money(tier_price(list_price=Decimal(list_price), tier=tier))
        return found

    return [
        {
            "id": pk,
            "title": title,
            "category": path,
            "kind": kind,
            "delivery_kind": delivery_for_kind(kind, delivery_kind),
            "price": price(skus[0][2]) if skus else None,
            "list_price": skus[0][2] if skus else None,  # SKUs come cheapest first
            "currency": skus[0][3] if skus else "CNY",
            "skus": [
                {
                    "id": sku[0],
                    "name": sku[1],
                    "price": price(sku[2]),
                    "list_price": sku[2],
                    "available": sku[4],
                }
                for sku in skus
            ],
            "min_tier": min_tier,
        }
        for pk, title, path, kind, delivery_kind, min_tier, skus in page.rows
    ]


_WAITING = (Payment.Status.PENDING, Payment.Status.FAILED)


def _payment_from_row(order_id: int, row: list | None) -> dict | None:
    """``payment_summary`` of the payment shown (``order_payment``), from its JSON row."""
    if row is None:
        return None
    pk, provider, provider_ref, reference, status, amount, currency, client_data, sub_merchant = row
    if status in _WAITING and client_data:  # signed anew: the provider needs the payment itself
        payment = Payment(
            id=pk,
            order_id=order_id,
            provider=provider,
            provider_ref=provider_ref,
            reference=reference,
            status=status,
            amount=Decimal(amount),
            currency=currency,
            client_data=client_data,
            sub_merchant=sub_merchant,
        )
        return payment_summary(payment)
    return {
        "order_id": order_id,
        "provider": provider,
        "status": status,
        "amount": amount,
        "currency": currency,
        "client_secret": None,
        "request_payment": None,
    }


def _from_json(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _page_time(value, zone):
    """``_time(value)`` for a page of values, the current time zone looked up once (``zone``)."""
    if value is None:
        return None
    if zone is None:
        return _time(value)
    try:
        text = value.astimezone(zone).isoformat()
    except OverflowError:  # years near 1 or 9999: DRF's own answer
        return _time(value)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def order_page_bodies(rows: list[list]) -> list[dict]:
    """``OrderOutput`` bodies of ``selectors.order_page_for_buyer``'s rows (after-sales: two more
    queries when some order of the page has any)."""
    after_sales = after_sales_by_order([row[1] for row in rows if row[-1]])
    zone = _DATETIME.default_timezone()
    bodies = []
    for (
        _count,
        pk,
        slug,
        status,
        payment_status,
        fulfilment_status,
        kind,
        total,
        discount,
        coupon_id,
        coupon_name,
        coupon_kind,
        currency,
        amount_paid,
        amount_refunded,
        lines,
        payment,
        created_at,
        hold_expires_at,
        paid_at,
        delivery,
        address,
        shipments,
        _has_after_sales,
    ) in rows:
        order_after_sales = after_sales.get(pk)
        bodies.append(
            {
                "id": pk,
                "community": slug,
                "status": status,
                "payment_status": payment_status,
                "fulfilment_status": fulfilment_status,
                "kind": kind,
                "total": total,
                "discount": discount,
                "coupon": None
                if coupon_id is None
                else {"id": coupon_id, "name": coupon_name, "kind": coupon_kind},
                "currency": currency,
                "amount_paid": amount_paid,
                "amount_refunded": amount_refunded,
                "lines": [
                    {
                        "id": line[0],
                        "sku": line[1],
                        "title": line[2],
                        "quantity": line[3],
                        "unit_price": line[4],
                        "line_total": line[5],
                        "discount": line[6],
                        "paid_amount": line[7],
                    }
                    for line in lines or ()
                ],
                "payment": _payment_from_row(pk, payment),
                "created_at": _page_time(_from_json(created_at), zone),
                "hold_expires_at": _page_time(_from_json(hold_expires_at), zone),
                "paid_at": _page_time(_from_json(paid_at), zone),
                "delivery": delivery,
                "address": None if address is None else {key: str(address[key]) for key in _ADDRESS_KEYS},
                "shipments": [
                    {
                        "id": shipment[0],
                        "carrier": shipment[1],
                        "tracking_no": shipment[2],
                        "shipped_at": _page_time(_from_json(shipment[3]), zone),
                        "confirmed_at": _page_time(_from_json(shipment[4]), zone),
                        "lines": [
                            {"line": line_id, "quantity": quantity} for line_id, quantity in shipment[5] or ()
                        ],
                    }
                    for shipment in shipments or ()
                ],
                "after_sales": AfterSaleOutput(order_after_sales, many=True).data
                if order_after_sales
                else [],
            }
        )
    return bodies
