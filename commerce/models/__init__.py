from commerce.models.catalog import CURRENCY_CNY, Category, Product, Sku
from commerce.models.orders import Order, OrderLine
from commerce.models.payments import Payment, Refund, WebhookEvent

__all__ = [
    "CURRENCY_CNY",
    "Category",
    "Order",
    "OrderLine",
    "Payment",
    "Product",
    "Refund",
    "Sku",
    "WebhookEvent",
]
