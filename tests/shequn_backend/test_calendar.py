"""One business calendar: health, activity, reminders and reports cut the day at the same instant."""

import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from commerce.models import Reminder
from commerce.reports.filters import ReportFilters
from commerce.reports.services import report_export
from commerce.services.renewals import renewal_reminders_create
from shequn_backend.calendar import business_day, business_time, day_bounds, days_bounds
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.jobs_helpers import bought
from tests.commerce.reports_world import column, read_csv
from tests.members.factories import CommunityFactory, MembershipFactory
from trust.health import community_health_series
from trust.models import ActivityDay

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAST_DAY, FIRST_DAY = date(2026, 3, 31), date(2026, 4, 1)
LAST_SECOND = datetime(2026, 3, 31, 23, 59, 59, tzinfo=SHANGHAI)
FIRST_SECOND = datetime(2026, 4, 1, 0, 0, 0, tzinfo=SHANGHAI)


def test_a_business_day_ends_at_shanghai_midnight():
    assert business_day(LAST_SECOND) == LAST_DAY
    assert business_day(FIRST_SECOND) == FIRST_DAY
    assert day_bounds(LAST_DAY) == (
        datetime(2026, 3, 30, 16, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 16, 0, tzinfo=UTC),
    )
    assert day_bounds(FIRST_DAY)[0] == FIRST_SECOND == day_bounds(LAST_DAY)[1]
    assert days_bounds(LAST_DAY, FIRST_DAY) == (day_bounds(LAST_DAY)[0], day_bounds(FIRST_DAY)[1])


def test_a_zone_activated_for_a_request_does_not_move_the_business_day():
    with timezone.override("America/Los_Angeles"):
        assert business_day(FIRST_SECOND) == FIRST_DAY


def test_the_zone_is_read_when_asked_from_the_business_setting(settings):
    settings.BUSINESS_TIME_ZONE = "UTC"

    assert business_day(FIRST_SECOND) == LAST_DAY  # 16:00 UTC on the 31st
    assert day_bounds(FIRST_DAY) == (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC))


def test_the_first_and_last_representable_days_have_bounds():
    assert days_bounds(date.min, date.max) == (
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    )
    assert business_day(datetime.max.replace(tzinfo=UTC)) == date.max
    assert business_time(datetime.min.replace(tzinfo=UTC)).year == 1


@pytest.fixture
def midnight_world(db, django_capture_on_commit_callbacks):
    """Two purchases and two expiries, one each side of Shanghai midnight between 31 March and 1 April."""
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), stock=10)
    late, early = MembershipFactory(community=community), MembershipFactory(community=community)
    with django_capture_on_commit_callbacks(execute=True):
        late_order = bought(late, sku, at=LAST_SECOND)
        early_order = bought(early, sku, at=FIRST_SECOND)
    late.expires_at, early.expires_at = LAST_SECOND, FIRST_SECOND
    for membership in (late, early):
        membership.save(update_fields=["expires_at"])
    return {"community": community, "late": late, "early": early, "orders": (late_order, early_order)}


def reported_orders(community, day: date) -> list[int]:
    stream = io.BytesIO()
    filters = ReportFilters(date_from=day, date_to=day, community_ids=frozenset({community.pk}))
    report_export(report_name="orders", filters=filters, fmt="csv", stream=stream, language="en")
    header, rows, _totals = read_csv(stream.getvalue())
    return [int(pk) for pk in column(header, rows, "Order no.")]


def test_health_activity_reminders_and_reports_put_the_last_and_first_second_on_the_same_days(midnight_world):
    community, late, early = midnight_world["community"], midnight_world["late"], midnight_world["early"]
    late_order, early_order = midnight_world["orders"]

    with timezone.override("America/Los_Angeles"):  # a zone a request may have activated
        renewal_reminders_create(now=LAST_SECOND - timedelta(days=3))
        series = community_health_series(
            community=community, now=datetime(2026, 4, 7, 12, 0, tzinfo=SHANGHAI), weeks=2
        )
        report_days = {day: reported_orders(community, day) for day in (LAST_DAY, FIRST_DAY)}

    assert report_days == {LAST_DAY: [late_order.pk], FIRST_DAY: [early_order.pk]}
    assert series.week_ends == [LAST_DAY, date(2026, 4, 7)]
    assert series.orders == [1, 1]  # the last second in the week ending on the 31st, the first in the next
    reminders = dict(Reminder.objects.filter(kind="renewal").values_list("membership_id", "due_on"))
    assert reminders == {late.pk: LAST_DAY, early.pk: FIRST_DAY}
    active = dict(ActivityDay.objects.filter(community=community).values_list("user_id", "day"))
    assert active == {late.user_id: LAST_DAY, early.user_id: FIRST_DAY}
