"""Reports, exports and dashboards read from the replica when one is configured; writes never go there."""

import io

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from commerce.models import Order
from commerce.reports.services import report_count, report_export
from shequn_backend.db import reading_from_replica
from tests.commerce.reports_world import build_ledger
from tests.commerce.test_reports import month
from trust.health import community_health

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def replica_reads(settings):
    assert connections["replica"].settings_dict["TEST"]["MIRROR"] == "default"
    settings.REPLICA_READS = True


def reads(captured) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
    ]


def test_exports_and_counts_read_from_the_replica_only(stripe, replica_reads):
    ledger = build_ledger(stripe)
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        for fmt in ("csv", "xlsx"):
            for report in ("order_lines", "orders", "payments"):
                result = report_export(report_name=report, filters=month(), fmt=fmt, stream=io.BytesIO())
                assert result.rows > 0, report
        assert report_count(report_name="payments", filters=month()) == result.rows
        with reading_from_replica() as alias:
            health = community_health(community=ledger["two_lines"].community)
    assert alias == "replica" and health is not None
    assert reads(replica) and not reads(primary), reads(primary)


def test_outside_a_report_reads_and_all_writes_stay_on_the_primary(stripe, replica_reads):
    ledger = build_ledger(stripe)
    with CaptureQueriesContext(connections["replica"]) as replica:
        assert Order.objects.filter(pk=ledger["two_lines"].pk).exists()
        with reading_from_replica():
            order = Order.objects.get(pk=ledger["two_lines"].pk)
            order.cancel_reason = "written inside the block"
            order.save(update_fields=["cancel_reason"])
    assert len(replica.captured_queries) == 1  # the read inside the block; the UPDATE went to default
    assert Order.objects.using("default").get(pk=order.pk).cancel_reason == "written inside the block"


def test_without_replica_reads_everything_uses_the_primary(stripe, settings):
    settings.REPLICA_READS = False
    build_ledger(stripe)
    with CaptureQueriesContext(connections["replica"]) as replica:
        report_export(report_name="orders", filters=month(), fmt="csv", stream=io.BytesIO())
    assert not replica.captured_queries
