from commerce.models.catalog import CURRENCY_CNY, Category, Product, Sku
from commerce.models.commissions import Commission, CommissionEntry
from commerce.models.orders import Order, OrderLine
from commerce.models.payments import Payment, Refund, WebhookEvent
from commerce.models.reminders import Notification, Reminder, RepurchaseRate
from commerce.models.reports import ExportJob
from commerce.models.sandbox import SandboxRefund, SandboxTrade

__all__ = [
    "CURRENCY_CNY",
    "Category",
    "Commission",
    "CommissionEntry",
    "ExportJob",
    "Notification",
    "Order",
    "OrderLine",
    "Payment",
    "Product",
    "Refund",
    "Reminder",
    "RepurchaseRate",
    "SandboxRefund",
    "SandboxTrade",
    "Sku",
    "WebhookEvent",
]
