from commerce.models.after_sales import AfterSale, AfterSaleLine
from commerce.models.catalog import CURRENCY_CNY, Category, Product, Sku
from commerce.models.commissions import Commission, CommissionEntry
from commerce.models.coupons import Coupon, MemberCoupon
from commerce.models.fulfilment import Shipment, ShipmentLine, ShippingUpload
from commerce.models.orders import Order, OrderLine
from commerce.models.payments import Payment, Refund, WebhookEvent
from commerce.models.reconciliation import BillDifference, BillReconciliation
from commerce.models.reminders import (
    Notification,
    NotificationQuota,
    Reminder,
    RepurchaseRate,
    SubscriptionConsent,
)
from commerce.models.reports import ExportJob
from commerce.models.sandbox import SandboxRefund, SandboxTrade, SandboxTransfer
from commerce.models.tickets import Ticket
from commerce.models.withdrawals import Withdrawal

__all__ = [
    "CURRENCY_CNY",
    "AfterSale",
    "AfterSaleLine",
    "BillDifference",
    "BillReconciliation",
    "Category",
    "Commission",
    "CommissionEntry",
    "Coupon",
    "ExportJob",
    "MemberCoupon",
    "Notification",
    "NotificationQuota",
    "Order",
    "OrderLine",
    "Payment",
    "Product",
    "Refund",
    "Reminder",
    "RepurchaseRate",
    "SandboxRefund",
    "SandboxTrade",
    "SandboxTransfer",
    "Shipment",
    "ShipmentLine",
    "ShippingUpload",
    "Sku",
    "SubscriptionConsent",
    "Ticket",
    "WebhookEvent",
    "Withdrawal",
]
