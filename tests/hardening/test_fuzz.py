"""Fuzz every API operation from our own OpenAPI schema, as an anonymous caller, a member and an owner.

Bounded (a dozen examples per operation and caller) so it fits the suite.
Checks: no 5xx, response bodies and content types match the schema.
schemathesis is driven through its Python API (each operation's Hypothesis
strategy) rather than its pytest plugin, which does not support pytest 9 yet.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from commerce.models import Category, Product, Sku
from members.models import Membership
from members.services.users import user_token
from tests.members.factories import CommunityFactory, MembershipFactory

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = 12


@pytest.fixture
def wsgi_app(db):
    """The real WSGI stack; the test's transaction must survive request start and finish."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db):
    community = CommunityFactory(slug="fuzz", attributes=["跑步"])
    member = MembershipFactory(community=community, status=Membership.Status.ACTIVE)
    shoes = Category.objects.get(path="运动户外/跑步装备")
    product = Product.objects.create(community=community, title="跑鞋", category=shoes, tags=["跑鞋"])
    Sku.objects.create(product=product, name="42码", price="499.00", stock=5)
    return {"anonymous": None, "owner": community.owner, "member": member.user}


def fuzz_operation(operation, app, headers) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def run(case):
        case.call_and_validate(app=app, headers=headers, checks=CHECKS)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["anonymous", "member", "owner"])
def test_every_operation_answers_within_its_schema(caller, world, wsgi_app):
    user = world[caller]
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # A fresh token per operation: logout and password change revoke the one they were given.
        headers = {"Authorization": f"Bearer {user_token(user=user)}"} if user else {}
        try:
            fuzz_operation(operation, wsgi_app, headers)
        except Exception as exc:  # noqa: BLE001 - collect every failing operation, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert operations >= 25
    assert not failures, "\n\n".join(failures)
