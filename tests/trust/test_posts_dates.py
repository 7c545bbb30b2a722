"""Content posts' published_at: a plausible range on input, valid ISO 8601 on output."""

import re
from datetime import UTC, datetime

import pytest

from tests.conftest import client_for
from tests.members.factories import CommunityFactory
from tests.members.test_auth_api import assert_error
from trust.models import ContentPost

pytestmark = pytest.mark.django_db

# ISO 8601 / RFC 3339: the offset is Z or ±hh:mm, never with seconds.
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@pytest.fixture
def community():
    return CommunityFactory()


def posts_url(community) -> str:
    return f"/api/v1/owner/communities/{community.slug}/posts/"


@pytest.mark.parametrize(
    "published_at",
    [
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00Z",
        "1899-12-31T23:00:00+08:00",
        "9999-12-31T23:59:59",
        "2100-06-01T00:00:00Z",
    ],
)
def test_an_implausible_published_at_is_refused_with_400(community, published_at):
    response = client_for(community.owner).post(
        posts_url(community), {"title": "年报解读", "published_at": published_at}, format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert "published_at" in error["fields"]
    assert not ContentPost.objects.exists()


def test_a_plausible_published_at_round_trips_as_iso_8601(community):
    response = client_for(community.owner).post(
        posts_url(community),
        {"title": "年报解读", "published_at": "2024-03-01T09:30:00+08:00"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["published_at"] == "2024-03-01T09:30:00+08:00"


def test_a_far_past_moment_already_stored_is_rendered_as_valid_iso_8601(community):
    """Given a post stored with a 19th-century date (Asia/Shanghai then used local mean time,
    +08:05:43), when the owner lists posts, then the date is valid ISO 8601 (in UTC)."""
    ContentPost.objects.create(
        community=community, title="旧文", tags=[], published_at=datetime(1850, 5, 1, tzinfo=UTC)
    )

    listed = client_for(community.owner).get(posts_url(community)).json()["results"]

    assert listed[0]["published_at"] == "1850-05-01T00:00:00Z"
    assert ISO_8601.fullmatch(listed[0]["published_at"])
