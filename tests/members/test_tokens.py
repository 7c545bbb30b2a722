"""API tokens: one per device, with an expiry; logout revokes; a password change revokes them all."""

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import AuthToken

from members.models import User
from members.services.users import user_token
from shequn_backend.models import AuditEntry
from tests.members.factories import PASSWORD, UserFactory
from tests.members.test_auth_api import assert_error, bearer

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-secret-42"


def works(token: str) -> bool:
    return bearer(token).get("/api/v1/me/").status_code == 200


class TestExpiry:
    def test_a_token_stops_working_once_its_lifetime_is_over(self, settings):
        """Given API_TOKEN_TTL_DAYS=30, a token issued 31 days ago is refused."""
        settings.API_TOKEN_TTL_DAYS = 30
        user = UserFactory()
        token = user_token(user=user)
        stored = AuthToken.objects.get(user=user)
        assert timedelta(days=29) < stored.expiry - timezone.now() <= timedelta(days=30)
        AuthToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - timedelta(seconds=1))
        assert_error(bearer(token).get("/api/v1/me/"), 401, "authentication_failed")

    def test_a_new_login_drops_expired_tokens_and_the_oldest_beyond_the_cap(self, settings):
        settings.API_TOKENS_PER_USER = 3
        user = UserFactory()
        tokens = [user_token(user=user) for _ in range(4)]
        assert [works(t) for t in tokens] == [False, True, True, True]
        AuthToken.objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))
        fresh = user_token(user=user)
        assert AuthToken.objects.filter(user=user).count() == 1 and works(fresh)

    def test_only_a_hash_of_the_token_is_stored(self):
        user = UserFactory()
        token = user_token(user=user)
        stored = AuthToken.objects.get(user=user)
        assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128

    def test_an_inactive_user_is_refused(self):
        user = UserFactory()
        token = user_token(user=user)
        User.objects.filter(pk=user.pk).update(is_active=False)
        assert_error(bearer(token).get("/api/v1/me/"), 401, "authentication_failed")


class TestLogout:
    def test_logout_revokes_this_device_only(self):
        user = UserFactory()
        phone, tablet = user_token(user=user), user_token(user=user)
        assert bearer(phone).post("/api/v1/auth/logout/").status_code == 204
        assert not works(phone)
        assert works(tablet)

    def test_logout_all_revokes_every_device_and_is_audited(self):
        user = UserFactory()
        phone, tablet = user_token(user=user), user_token(user=user)
        assert bearer(phone).post("/api/v1/auth/logout-all/").status_code == 204
        assert not works(phone) and not works(tablet)
        entry = AuditEntry.objects.get(action="user.tokens_revoked")
        assert entry.actor == user and entry.changes == {"tokens": [2, 0]}

    def test_logout_without_a_token_is_401(self, api_client):
        assert_error(api_client.post("/api/v1/auth/logout/"), 401, "not_authenticated")


class TestPasswordChange:
    def test_a_password_change_revokes_all_tokens_and_returns_a_fresh_one(self, api_client):
        user = UserFactory()
        phone, tablet = user_token(user=user), user_token(user=user)
        response = bearer(phone).post(
            "/api/v1/auth/password/",
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            format="json",
        )
        assert response.status_code == 200, response.content
        assert response.json()["user"]["id"] == user.id
        assert not works(phone) and not works(tablet)
        assert works(response.json()["token"])
        login = {"username": user.username, "password": NEW_PASSWORD}
        assert api_client.post("/api/v1/auth/login/", login, format="json").status_code == 200
        entry = AuditEntry.objects.get(action="user.password_changed")
        assert entry.actor == user and entry.changes["tokens_revoked"] == 2

    def test_a_wrong_old_password_changes_nothing(self):
        user = UserFactory()
        token = user_token(user=user)
        response = bearer(token).post(
            "/api/v1/auth/password/", {"old_password": "guess", "new_password": NEW_PASSWORD}, format="json"
        )
        error = assert_error(response, 400, "validation_error")
        assert "old_password" in error["fields"]
        assert works(token)
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_a_weak_new_password_is_refused(self):
        user = UserFactory()
        token = user_token(user=user)
        response = bearer(token).post(
            "/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": "123"}, format="json"
        )
        error = assert_error(response, 400, "validation_error")
        assert "new_password" in error["fields"]
        assert works(token)

    def test_a_password_changed_in_the_admin_revokes_the_users_tokens(self, client):
        admin = UserFactory(is_staff=True, is_superuser=True)
        user = UserFactory()
        token = user_token(user=user)
        client.force_login(admin)
        response = client.post(
            f"/admin/members/user/{user.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        user.refresh_from_db()
        assert user.check_password(NEW_PASSWORD)
        assert not works(token)
        assert AuditEntry.objects.get(action="user.password_changed").actor == admin

    def test_disabling_password_login_in_the_admin_revokes_the_tokens_too(self, client):
        admin = UserFactory(is_staff=True, is_superuser=True)
        user = UserFactory()
        token = user_token(user=user)
        client.force_login(admin)
        response = client.post(
            f"/admin/members/user/{user.pk}/password/", {"usable_password": "false", "unset-password": "1"}
        )
        assert response.status_code == 302
        user.refresh_from_db()
        assert not user.has_usable_password()
        assert not works(token)
