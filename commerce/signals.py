"""Signals other apps may listen to (trust rescoring listings); commerce imports none of them."""

from django.dispatch import Signal

# Sent after the transaction that created or changed a product (with its SKUs) commits.
# Arguments: product_id (int), created (bool).
product_listed = Signal()
