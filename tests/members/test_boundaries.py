"""Members never reaches into commerce: commerce serves paid join and referral totals itself."""

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import resolve

from commerce.api import membership as commerce_membership
from members.demo import DemoContext, seed_communities, seed_users
from members.models import Community, Membership
from shequn_backend.audit import SYSTEM
from shequn_backend.models import AuditEntry

MEMBERS = Path(__file__).resolve().parents[2] / "members"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_members_imports_no_commerce_module():
    offenders = {
        str(path.relative_to(MEMBERS)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "commerce"
        )
        for path in MEMBERS.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_no_setting_holds_a_dotted_path_into_commerce():
    assert not hasattr(settings, "MEMBERS_ENTRY_CHECKOUT")
    assert not hasattr(settings, "MEMBERS_COMMISSION_TOTALS")


@pytest.mark.parametrize(
    ("path", "view"),
    [
        ("/api/v1/communities/club/join/", commerce_membership.JoinApi),
        ("/api/v1/me/referrals/", commerce_membership.MyReferralsApi),
    ],
)
def test_join_and_referrals_are_served_by_commerce_at_the_same_paths(path, view):
    assert resolve(path).func.view_class is view


@pytest.mark.django_db
def test_the_demo_builds_members_through_the_services_as_the_system():
    ctx = DemoContext()
    seed_users(ctx)
    seed_communities(ctx)
    before = AuditEntry.objects.count()
    seed_communities(ctx)  # idempotent

    paid = Community.objects.get(slug="caijing-shuyou")
    assert paid.memberships.filter(status=Membership.Status.ACTIVE).count() == 5  # owner and four members
    assert paid.memberships.filter(role=Membership.Role.KOL).count() == 1
    assert paid.memberships.filter(referred_by__isnull=False).count() == 3  # a chain of referrals
    assert AuditEntry.objects.filter(action="community.created", actor_label=SYSTEM).count() == 3
    assert AuditEntry.objects.filter(action="membership.activated_paid", community=paid).count() == 4
    assert AuditEntry.objects.count() == before
