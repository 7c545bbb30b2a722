"""The console pages this work added or changed read in Chinese for owners: no English phrases left."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from commerce.services.refunds import refund_request
from tests.commerce.test_admin import owner_a, world  # noqa: F401 - fixtures
from tests.test_translations import ALLOWED_WORDS, ENGLISH_PHRASE, visible_text

pytestmark = pytest.mark.django_db


def english_phrases(html: str) -> list[str]:
    text = visible_text(html)
    return [
        phrase
        for phrase in ENGLISH_PHRASE.findall(text)
        if not set(re.findall(r"[A-Za-z]+", phrase)) <= ALLOWED_WORDS | {"Stripe"}
    ]


def test_the_console_pages_have_no_english_phrases(owner_a, world, stripe):  # noqa: F811
    order = world["a_order"]
    refund_request(actor=world["a"].owner, order_id=order.pk, amount=Decimal("5.00"), reason="破损")
    pages = {
        "order page": owner_a.get(reverse("admin:commerce_order_change", args=[order.pk])),
        "refund confirmation": owner_a.post(
            reverse("admin:commerce_order_changelist"), {"action": "refund", "_selected_action": [order.pk]}
        ),
        "payments": owner_a.get(reverse("admin:commerce_payment_changelist")),
        "refunds": owner_a.get(reverse("admin:commerce_refund_changelist")),
        "audit trail": owner_a.get(reverse("admin:shequn_backend_auditentry_changelist")),
        "invite code add": owner_a.get(reverse("admin:members_invitecode_add")),
        "product page": owner_a.get(reverse("admin:commerce_product_change", args=[world["a_product"].pk])),
        "home": owner_a.get(reverse("admin:index")),
    }

    found = {name: english_phrases(response.content.decode()) for name, response in pages.items()}

    assert all(response.status_code == 200 for response in pages.values())
    assert "refund-plan" in pages["refund confirmation"].content.decode()
    assert "与社群的匹配" in pages["product page"].content.decode()
    assert {name: phrases for name, phrases in found.items() if phrases} == {}
