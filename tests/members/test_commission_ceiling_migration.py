"""The migration that brought communities under the commission ceiling recorded each change."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection

from members.models import Community
from shequn_backend.models import AuditEntry
from tests.members.factories import CommunityFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("members.migrations.0007_phone_and_commission_ceiling")


def test_each_community_lowered_has_a_system_audit_row():
    over = CommunityFactory()
    within = CommunityFactory(referral_level1_percent=Decimal("30"), referral_level2_percent=Decimal("20"))
    with connection.cursor() as cursor:  # rows from before the ceiling: the test's transaction undoes this
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign key checks before ALTER
        cursor.execute("ALTER TABLE members_community DROP CONSTRAINT community_commission_total_ceiling")
        cursor.execute(
            "UPDATE members_community SET referral_level1_percent = 40, referral_level2_percent = 25"
            " WHERE id = %s",
            [over.pk],
        )

    migration.lower_rates_above_the_ceiling(apps, None)

    over.refresh_from_db()
    assert (over.referral_level1_percent, over.referral_level2_percent) == (Decimal("40"), Decimal("10"))
    entry = AuditEntry.objects.get(action="community.commission_rates_changed", target_id=str(over.pk))
    assert (entry.actor, entry.actor_label, entry.target_type, entry.community_id) == (
        None,
        "system",
        "members.community",
        over.pk,
    )
    assert entry.changes == {
        "referral_level1_percent": ["40.00", "40.00"],
        "referral_level2_percent": ["25.00", "10.00"],
    }
    assert not AuditEntry.objects.filter(target_id=str(within.pk), action__startswith="community.commission")
    assert Community.objects.get(pk=within.pk).referral_level2_percent == Decimal("20")
