"""Profile writes (nickname, interests) go through the users service: audited and announced."""

import pytest

from members.events import user_interests_changed
from members.models import UserInterest
from shequn_backend.models import AuditEntry
from tests.conftest import client_for
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    calls = []

    def listener(sender, user_id, **kwargs):
        calls.append(user_id)

    user_interests_changed.connect(listener, dispatch_uid="test_profile_audit")
    yield calls
    user_interests_changed.disconnect(dispatch_uid="test_profile_audit")


def test_a_member_changing_their_profile_leaves_audit_rows_and_announces_the_interests(
    django_capture_on_commit_callbacks, heard
):
    member = UserFactory(nickname="小雨")

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(member).patch(
            "/api/v1/me/", {"nickname": "小雨同学", "interests": ["跑步", "读书"]}, format="json"
        )

    assert response.status_code == 200
    rows = {row.action: row for row in AuditEntry.objects.filter(target_id=str(member.pk))}
    assert rows["user.nickname_changed"].changes == {"nickname": ["小雨", "小雨同学"]}
    assert rows["user.interests_changed"].changes == {"interests": [[], ["跑步", "读书"]]}
    assert rows["user.interests_changed"].actor == member
    assert heard == [member.pk]


def test_the_same_interests_again_change_nothing_and_announce_nothing(
    django_capture_on_commit_callbacks, heard
):
    member = UserFactory()
    client = client_for(member)
    client.patch("/api/v1/me/", {"interests": ["跑步"]}, format="json")

    with django_capture_on_commit_callbacks(execute=True):
        client.patch("/api/v1/me/", {"interests": ["跑步"]}, format="json")

    assert heard == []
    assert AuditEntry.objects.filter(action="user.interests_changed").count() == 1


def test_a_superuser_editing_interests_in_the_admin_goes_through_the_service(
    client, django_capture_on_commit_callbacks, heard
):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    member = UserFactory(username="member-a", nickname="甲")
    UserInterest.objects.create(user=member, tag="跑步")
    page = f"/admin/members/user/{member.pk}/change/"
    client.force_login(admin_user)
    form = client.get(page).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "username": member.username,
            "nickname": member.nickname,
            "date_joined_0": member.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": member.date_joined.strftime("%H:%M:%S"),
            "interests-TOTAL_FORMS": "2",
            "interests-INITIAL_FORMS": "1",
            "interests-0-id": str(member.interests.get().pk),
            "interests-0-user": str(member.pk),
            "interests-0-tag": "跑步",
            "interests-0-DELETE": "on",
            "interests-1-user": str(member.pk),
            "interests-1-tag": "读书",
        }
    )
    for many_or_empty in ("groups", "user_permissions", "last_login"):
        data.pop(many_or_empty, None)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page, data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert list(member.interests.values_list("tag", flat=True)) == ["读书"]
    entry = AuditEntry.objects.get(action="user.interests_changed", target_id=str(member.pk))
    assert entry.actor == admin_user and entry.changes == {"interests": [["跑步"], ["读书"]]}
    assert heard == [member.pk]
