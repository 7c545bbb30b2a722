"""Fuzz every API operation from our own OpenAPI schema, as an anonymous caller, a member and an owner.

Bounded (a few examples per operation, mode and caller) so it fits the suite.
Checks on every answer: no 5xx, statuses, content types and bodies as the schema documents
them. Schema-valid data (positive mode) is sent both to random and to real resources (the
world's community, product, order and membership); an operation none of whose schema-valid
requests was served, refused mostly on the data itself (400), is schemathesis's "schema
validation mismatch" warning, and fails here. Schema-invalid data (negative mode) must not
cause a 5xx or an undocumented answer either.
schemathesis is driven through its Python API (each operation's Hypothesis strategy) rather
than its pytest plugin, which does not support pytest 9 yet.
"""

import contextlib
import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from commerce.models import AfterSale, Category, CommissionEntry, Coupon, OrderLine, Product, Sku, Withdrawal
from commerce.payments import sandbox
from commerce.services.after_sales import LineQuantity, after_sale_request
from commerce.services.coupons import coupon_create, coupon_issue
from members.models import Membership
from members.services.users import user_token
from tests.commerce.conftest import stripe  # noqa: F401 - the fake Stripe server the world's order uses
from tests.commerce.flows import pay
from tests.commerce.stripe_server import sign
from tests.conftest import client_for
from tests.members.factories import PASSWORD, CommunityFactory, MembershipFactory
from tests.members.test_auth_api import fake_wechat  # noqa: F401 - a local code-to-session endpoint

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 4
# Refusals that say nothing about the data sent (schemathesis leaves them out of its warning).
NOT_ABOUT_DATA = {401, 403, 404, 409, 429}
# Operations that end the caller's session: fuzzed last, with a token of their own.
SESSION_ENDING = ("/auth/logout", "/auth/password")


@pytest.fixture
def wsgi_app(db):
    """The real WSGI stack; the test's transaction must survive request start and finish."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, stripe, fake_wechat, settings):  # noqa: F811
    settings.WECHAT_TEMPLATE_REPURCHASE = "tmpl-fuzz-repurchase"
    settings.PAYMENT_SANDBOX_ENABLED = True  # its endpoints answer (Stripe stays the default provider)
    community = CommunityFactory(slug="fuzz", attributes=["跑步"])
    member = MembershipFactory(community=community, status=Membership.Status.ACTIVE)
    pending = MembershipFactory(community=community, status=Membership.Status.PENDING_APPROVAL)
    shoes = Category.objects.get(path="运动户外/跑步装备")
    product = Product.objects.create(community=community, title="跑鞋", category=shoes, tags=["跑鞋"])
    sku = Sku.objects.create(product=product, name="42码", price="499.00", stock=50)
    coupon = coupon_create(
        actor=community.owner,
        community=community,
        name="满400减50",
        kind=Coupon.Kind.AMOUNT,
        amount_off=Decimal("50.00"),
        min_spend=Decimal("400.00"),
        code="FUZZ",
        per_member_limit=1000,
        valid_until=timezone.now() + timedelta(days=30),
    )
    [grant] = coupon_issue(actor=community.owner, coupon=coupon, membership_ids=[member.pk], issue_key="fuzz")
    order = client_for(member.user).post(
        "/api/v1/orders/",
        {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": 10}], "coupon": grant.pk},
        format="json",
    )
    assert order.status_code == 201 and order.json()["discount"] == "50.00", order.content
    pay(stripe, order.json()["id"])
    line = OrderLine.objects.get(order_id=order.json()["id"])
    after_sale = after_sale_request(
        actor=member.user,
        order_id=line.order_id,
        type=AfterSale.Type.REFUND_ONLY,
        lines=[LineQuantity(line.pk, 1)],
        reason="破损",
    )
    open_club = CommunityFactory(slug="fuzz-open")
    # KOLs with settled commission: withdrawals can be asked for (WeChat comes from the bind
    # operation, fuzzed before them) and read.
    owner_membership = Membership.objects.get(community=community, user=community.owner)
    for kol in (member, owner_membership):
        CommissionEntry.objects.create(
            beneficiary=kol, kind=CommissionEntry.Kind.SETTLEMENT, amount="500.00", idempotency_key="fuzz"
        )
    withdrawal = Withdrawal.objects.create(
        user=member.user, amount="10.00", out_bill_no="WDFUZZ0001", openid="openid-kol"
    )
    event = {"id": "evt_fuzz", "object": "event", "type": "customer.created", "data": {"object": {}}}
    sandbox_event = {"id": "sandbox_fuzz", "event_type": "SANDBOX.TEST", "resource": {}}  # stored, ignored
    return {
        "callers": {"anonymous": None, "owner": community.owner, "member": member.user},
        "path_parameters": {
            "slug": community.slug,
            "product_id": product.pk,
            "order_id": order.json()["id"],
            "membership_id": pending.pk,
            "withdrawal_id": withdrawal.pk,
            "after_sale_id": after_sale.pk,
        },
        # Data no generator can guess (passwords, real names, signatures): sent to the real resources.
        "requests": {
            "POST /api/v1/auth/login/": {"body": {"username": member.user.username, "password": PASSWORD}},
            "POST /api/v1/auth/wechat/": {"body": {"code": "good-fuzz"}},
            "POST /api/v1/auth/wechat/bind/": {"body": {"code": "good-bind"}},  # an openid nobody holds
            "POST /api/v1/auth/register/": {
                "body": {"username": "newcomer", "password": "a-longer-passphrase-2026"}
            },
            "POST /api/v1/auth/password/": {
                "body": {"old_password": PASSWORD, "new_password": "a-longer-passphrase-2026"}
            },
            "POST /api/v1/communities/{slug}/join/": {
                "body": {},
                "path_parameters": {"slug": open_club.slug},
            },
            "POST /api/v1/owner/communities/{slug}/products/": {
                "body": {
                    "title": "袜子",
                    "category": shoes.path,
                    "skus": [{"name": "均码", "price": "9.90", "stock": 5}],
                }
            },
            "POST /api/v1/me/coupons/claim/": {"body": {"community": community.slug, "code": "FUZZ"}},
            "POST /api/v1/owner/orders/{order_id}/refund/": {"body": {"amount": "1.00", "reason": "破损"}},
            "POST /api/v1/me/withdrawals/": {"body": {"amount": "10.00"}},
            "POST /api/v1/payments/sandbox/transfer/confirm/": {"body": {"withdrawal_id": withdrawal.pk}},
            "POST /api/v1/me/phone/": {"body": {"code": "good-phone"}},
            "POST /api/v1/me/subscriptions/": {"body": {"results": {"tmpl-fuzz-repurchase": "accept"}}},
            "POST /api/v1/orders/{order_id}/after-sales/": {
                "body": {"type": "refund_only", "lines": [{"line": line.pk, "quantity": 1}], "reason": "破损"}
            },
            "POST /api/v1/orders/{order_id}/after-sales/{after_sale_id}/return/": {
                "body": {"carrier": "SF", "tracking_no": "SF12345"}
            },
            "POST /api/v1/owner/after-sales/{after_sale_id}/reject/": {"body": {"reason": "照片不清楚"}},
            "POST /api/v1/payments/sandbox/notify/": {
                "body": sandbox_event,
                "headers": sandbox.sign_notification(json.dumps(sandbox_event).encode()),
            },
            "POST /api/v1/payments/stripe/webhook/": {
                "body": event,
                "headers": {
                    "Stripe-Signature": sign(json.dumps(event), django_settings.STRIPE_WEBHOOK_SECRET)
                },
            },
        },
    }


def fuzz(operation, app, user, mode: GenerationMode, world=None) -> Counter:
    """Call the operation with generated cases (parts fixed from ``world``); return the statuses answered."""
    statuses: Counter = Counter()
    fixed = {}
    if world is not None:
        request = world["requests"].get(f"{operation.method.upper()} {operation.path}", {})
        names = {p.name for p in operation.path_parameters}
        path_parameters = {**world["path_parameters"], **request.get("path_parameters", {})}
        fixed = {k: v for k, v in request.items() if k in ("body", "headers")}
        fixed["path_parameters"] = {k: v for k, v in path_parameters.items() if k in names} or None

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def run(case):
        # A fresh token per case: logout and password change revoke the one they were given.
        headers = {"Authorization": f"Bearer {user_token(user=user)}"} if user else {}
        response = case.call(app=app, headers=headers)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    with contextlib.suppress(Unsatisfiable):  # nothing to vary (no parameters, or none to make invalid)
        run()
    return statuses


def validation_mismatch(statuses: Counter) -> bool:
    """Schemathesis's warning: no schema-valid request served, and the refusals are about the data."""
    if not statuses or any(code < 400 for code in statuses) or 401 in statuses:
        return False
    refused = sum(n for code, n in statuses.items() if 400 <= code < 500)
    about_data = sum(n for code, n in statuses.items() if 400 <= code < 500 and code not in NOT_ABOUT_DATA)
    return refused > 0 and about_data / refused >= 0.1


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["anonymous", "member", "owner"])
def test_every_operation_answers_within_its_schema(caller, world, wsgi_app):
    user = world["callers"][caller]
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda operation: operation.path.startswith(tuple(f"/api/v1{p}" for p in SESSION_ENDING)),
    )
    failures, mismatches = [], []
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        cache.clear()  # throttle counters: each operation starts with none
        try:
            positive = fuzz(operation, wsgi_app, user, GenerationMode.POSITIVE)
            positive += fuzz(operation, wsgi_app, user, GenerationMode.POSITIVE, world)
            if user is not None or not operation.definition.raw.get("security"):  # else all 401s
                fuzz(operation, wsgi_app, user, GenerationMode.NEGATIVE)
        except Exception as exc:  # noqa: BLE001 - collect every failing operation, then report them all
            failures.append(f"{label}: {str(exc)[:1500]}")
            continue
        if validation_mismatch(positive):
            mismatches.append(f"{label}: {dict(positive)}")
    assert len(operations) >= 30
    assert "/healthz" in {operation.path for operation in operations}
    assert not failures, "\n\n".join(failures)
    assert not mismatches, "schema validation mismatch:\n" + "\n".join(mismatches)
