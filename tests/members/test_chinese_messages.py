"""Messages our users meet come back in Chinese: DRF's parse errors, Django's password rules, our refusals."""

import re

import pytest
from django.urls import reverse
from django.utils import translation

from members.models import Community
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, UserFactory
from tests.members.test_auth_api import assert_error

pytestmark = pytest.mark.django_db
LATIN_WORDS = re.compile(r"[A-Za-z]{4,}")


def test_a_json_parse_error_says_where_in_chinese(api_client):
    response = api_client.post("/api/v1/auth/register/", '{"username": ', content_type="application/json")

    message = assert_error(response, 400, "parse_error")["message"]
    assert "JSON" in message and "第 1 行" in message
    assert not LATIN_WORDS.findall(message.replace("JSON", "").replace("UTF", ""))


def test_password_rules_answer_in_chinese(api_client, settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
        {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    ]
    response = api_client.post(
        "/api/v1/auth/register/", {"username": "newcomer", "password": "123"}, format="json"
    )

    messages = assert_error(response, 400, "validation_error")["fields"]["password"]
    assert len(messages) == 2 and any("至少需要 8 个字符" in text for text in messages), messages
    assert not any(LATIN_WORDS.search(text) for text in messages), messages


def test_a_taken_slug_says_the_slug_is_taken_not_the_username():
    CommunityFactory(slug="tea-club")
    payload = {"slug": "tea-club", "name": "茶友会", "entry_type": "free"}

    response = client_for(UserFactory()).post("/api/v1/owner/communities/", payload, format="json")

    error = assert_error(response, 400, "validation_error")
    text = " ".join(error["fields"]["slug"])
    assert "短链接" in text and "用户名" not in text


def test_communities_are_called_社群_in_menus_breadcrumbs_and_bulk_labels(client):
    community = CommunityFactory()
    client.force_login(community.owner)
    community.owner.is_staff = True
    community.owner.save(update_fields=["is_staff"])

    with translation.override("zh-hans"):
        assert str(Community._meta.verbose_name_plural) == "社群"
    page = client.get(reverse("admin:members_community_change", args=[community.pk])).content.decode()
    assert "经营你的社群</a>" not in page and ">社群</a>" in page


def test_a_taken_slug_in_the_admin_says_the_slug_is_taken(client):
    CommunityFactory(slug="tea-club")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(reverse("admin:members_community_add"), {"name": "茶友会", "slug": "tea-club"})

    assert response.context["adminform"].form.errors["slug"] == ["该短链接（slug）已被使用，请换一个。"]
