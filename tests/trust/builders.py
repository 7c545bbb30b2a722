"""Build test data the way the live system does: through services, with their on-commit events run.

In an ordinary ``db`` test nothing commits, so ``transaction.on_commit``
callbacks (the events trust listens to) never run; ``committed()`` runs
them at the end of its block, as a real commit would.
"""

from decimal import Decimal

from django.test import TestCase

from commerce.models import Category, Product
from commerce.services.catalog import SkuInput, product_create


def committed():
    """A block whose on-commit callbacks (and those they add) run when it ends."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def list_product(community, *, title: str, category: str, tags=(), price: str = "99.00") -> Product:
    """List a product through commerce's service; trust assesses it on the announced event."""
    with committed():
        return product_create(
            actor=community.owner,
            community=community,
            title=title,
            category=Category.objects.get(path=category),
            kind=Product.Kind.GOODS,
            skus=[SkuInput(name="标准装", price=Decimal(price), stock=10)],
            tags=list(tags),
        )
