"""WeChat's shipping information (发货信息) for orders paid by WeChat Pay.

WeChat holds a mini-program payment's funds until the merchant says how the
goods went out: express with tracking when shipped (``logistics_type`` 1,
one upload per package, split delivery for several), self-pickup when
handed over (4), virtual goods right after payment (3). Each upload is a
``ShippingUpload`` row queued on commit and sent by a Celery task that
retries with backoff: WeChat answers 10060001 for a while after a payment,
and allows a single re-upload, so a row once taken is never sent again and
packages go in the order they were shipped. ``Order.shipping_info_status``
shows where the order stands.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Order, Payment, Product, Shipment, ShippingUpload
from members import wechat
from members.errors import WechatBadAnswer, WechatBusy, WechatUnavailable
from shequn_backend.events import enqueue_on_commit

UPLOAD_PATH = "/wxa/sec/order/upload_shipping_info"
# Worth another try later: busy, quota, the payment not yet known to the shipping service.
RETRY_ERRCODES = {-1, 45011, 10060001}
ALREADY_TAKEN = 10060023  # the same information again: WeChat has it
L = ShippingUpload.Logistics


class ShippingInfoRetry(Exception):
    """The upload should be tried again later (the task retries with backoff)."""


def _wechat_payment(order: Order) -> Payment | None:
    return order.payments.filter(provider="wechatpay", status=Payment.Status.SUCCEEDED).first()


def shipping_info_queue(*, order: Order, shipment: Shipment | None = None) -> ShippingUpload | None:
    """Queue the upload for ``shipment`` (express) or for the whole order (pickup or virtual goods).

    Call inside the transaction that shipped, handed over or was paid; does
    nothing for orders not paid by WeChat Pay or already queued.
    """
    if _wechat_payment(order) is None:
        return None
    logistics = L.EXPRESS if shipment is not None else (L.VIRTUAL if _is_virtual(order) else L.PICKUP)
    upload, created = ShippingUpload.objects.get_or_create(
        order=order, shipment=shipment, defaults={"logistics_type": logistics}
    )
    if created:
        _refresh_order_state(order_id=order.pk)
        from commerce.tasks import shipping_info_upload_task  # tasks import services

        enqueue_on_commit(shipping_info_upload_task, upload.pk)
    return upload


def _is_virtual(order: Order) -> bool:
    """Entry fees, tickets and goods that do not ship (orders from before delivery was recorded
    count as shipping when a line is goods that ship)."""
    if order.delivery != Order.Delivery.NONE:
        return False
    return not order.lines.filter(
        product__kind=Product.Kind.GOODS, product__delivery_kind=Product.Delivery.SHIPPED
    ).exists()


def shipping_info_after_payment(*, order: Order) -> None:
    """Virtual goods (entry, tickets, courses) are delivered by the payment itself: upload at once."""
    if _is_virtual(order):
        shipping_info_queue(order=order)


def shipping_info_after_handover(*, order: Order) -> None:
    """Goods that ship, handed over without express (self-pickup): upload once delivered."""
    if order.delivery != Order.Delivery.EXPRESS and not _is_virtual(order):
        shipping_info_queue(order=order)


def _masked(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"


def _item_desc(order: Order, shipment: Shipment | None) -> str:
    if shipment is not None:
        titles = [f"{item.line.title}×{item.quantity}" for item in shipment.lines.select_related("line")]
    else:
        titles = [f"{line.title}×{line.quantity}" for line in order.lines.all()]
    return ("；".join(titles) or _("Order #%(id)s") % {"id": order.pk})[:120]


def _payload(upload: ShippingUpload, payment: Payment) -> dict:
    order, shipment = upload.order, upload.shipment
    item = {"item_desc": _item_desc(order, shipment)}
    body = {
        "order_key": {"order_number_type": 2, "transaction_id": payment.provider_ref},
        "logistics_type": upload.logistics_type,
        "delivery_mode": 1,
        "upload_time": timezone.now().isoformat(timespec="seconds"),
        "payer": {"openid": order.buyer.wechat_openid or ""},
        "shipping_list": [item],
    }
    if shipment is None:
        return body
    item.update(tracking_no=shipment.tracking_no, express_company=shipment.carrier)
    if shipment.carrier == "SF" and order.address:
        item["contact"] = {"receiver_contact": _masked(order.address.get("phone", ""))}
    shipments = list(order.shipments.order_by("pk").values_list("pk", flat=True))
    everything_shipped = order.fulfilment_status != Order.FulfilmentStatus.PARTIALLY_SHIPPED
    if len(shipments) > 1 or not everything_shipped:
        body["delivery_mode"] = 2
        body["is_all_delivered"] = everything_shipped and shipments[-1] == shipment.pk
    return body


def _earlier_waiting(upload: ShippingUpload) -> bool:
    return ShippingUpload.objects.filter(
        order_id=upload.order_id,
        shipment__isnull=False,
        pk__lt=upload.pk,
        status=ShippingUpload.Status.PENDING,
    ).exists()


def _send(body: dict) -> dict:
    try:
        answer = wechat.call(UPLOAD_PATH, body)
    except (WechatUnavailable, WechatBusy, WechatBadAnswer) as exc:
        return {"errcode": -1, "errmsg": str(exc)}
    return answer


def shipping_info_upload(*, upload_id: int) -> str:
    """Send one queued upload; idempotent (an uploaded row is never sent again).

    Returns the row's status; raises ``ShippingInfoRetry`` when WeChat (or
    an earlier package) asks for another try later.
    """
    with transaction.atomic():
        upload = (
            ShippingUpload.objects.select_for_update(of=("self",))
            .select_related("order__buyer", "shipment")
            .get(pk=upload_id)
        )
        if upload.status != ShippingUpload.Status.PENDING:
            return upload.status
        if _earlier_waiting(upload):
            raise ShippingInfoRetry("an earlier package is not uploaded yet")
        payment = _wechat_payment(upload.order)
        answer = _send(_payload(upload, payment))
        errcode = answer.get("errcode") or 0
        upload.attempts += 1
        if errcode in (0, ALREADY_TAKEN):
            upload.status, upload.uploaded_at, upload.last_error = (
                ShippingUpload.Status.UPLOADED,
                timezone.now(),
                "",
            )
        else:
            upload.last_error = f"{errcode} {answer.get('errmsg', '')}"[:500]
            if errcode not in RETRY_ERRCODES:
                upload.status = ShippingUpload.Status.FAILED
        upload.save(update_fields=["status", "attempts", "last_error", "uploaded_at", "updated_at"])
        _refresh_order_state(order_id=upload.order_id)
    if upload.status == ShippingUpload.Status.PENDING:
        raise ShippingInfoRetry(upload.last_error)
    return upload.status


def _refresh_order_state(*, order_id: int) -> str:
    """Summarise the order's uploads on ``Order.shipping_info_status``."""
    S, Info = ShippingUpload.Status, Order.ShippingInfo
    statuses = list(ShippingUpload.objects.filter(order_id=order_id).values_list("status", flat=True))
    order = Order.objects.only("fulfilment_status").get(pk=order_id)
    if not statuses:
        state = Info.NOT_NEEDED
    elif S.FAILED in statuses:
        state = Info.FAILED
    elif S.PENDING not in statuses and order.fulfilment_status != Order.FulfilmentStatus.PARTIALLY_SHIPPED:
        state = Info.UPLOADED
    elif S.UPLOADED in statuses:
        state = Info.PARTIAL
    else:
        state = Info.PENDING
    Order.objects.filter(pk=order_id).exclude(shipping_info_status=state).update(shipping_info_status=state)
    return state


def shipping_info_upload_pending(*, now: datetime, stale_minutes: int = 10) -> int:
    """Try again every upload still pending ``stale_minutes`` after it was queued (its task gave up or
    was lost); returns how many WeChat took."""
    uploaded = 0
    due = now - timedelta(minutes=stale_minutes)
    pending = ShippingUpload.objects.filter(status=ShippingUpload.Status.PENDING, created_at__lte=due)
    for upload_id in pending.order_by("pk").values_list("pk", flat=True):
        try:
            uploaded += shipping_info_upload(upload_id=upload_id) == ShippingUpload.Status.UPLOADED
        except ShippingInfoRetry:
            continue
    return uploaded
