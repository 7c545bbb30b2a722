"""WeChat identity: login keeps the unionid; a password account binds its WeChat, one account per openid."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from commerce.payments import base
from commerce.payments.sandbox import SandboxProvider
from members.models import User
from members.services.users import user_bind_wechat, user_login_wechat
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

BIND_URL = "/api/v1/auth/wechat/bind/"
LOGIN_URL = "/api/v1/auth/wechat/"


def bind(user, code):
    return client_for(user).post(BIND_URL, {"code": code}, format="json")


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.django_db
class TestLogin:
    def test_login_calls_jscode2session_under_the_api_base_and_keeps_the_unionid(
        self, api_client, miniprogram_server
    ):
        code = miniprogram_server.issue_code("o-openid-1", unionid="u-union-1")

        response = api_client.post(LOGIN_URL, {"code": code}, format="json")

        assert response.status_code == 200, response.content
        user = User.objects.get(pk=response.json()["user"]["id"])
        assert (user.wechat_openid, user.wechat_unionid) == ("o-openid-1", "u-union-1")
        assert miniprogram_server.calls[-1][0] == "/sns/jscode2session"

    def test_a_later_login_adds_the_unionid_to_the_account_found_by_openid(
        self, api_client, miniprogram_server
    ):
        user = UserFactory(wechat_openid="o-openid-2")
        code = miniprogram_server.issue_code("o-openid-2", unionid="u-union-2")

        response = api_client.post(LOGIN_URL, {"code": code}, format="json")

        assert response.json()["user"]["id"] == user.pk
        user.refresh_from_db()
        assert user.wechat_unionid == "u-union-2" and User.objects.count() == 1

    def test_a_unionid_known_without_an_openid_logs_into_that_account(self, api_client, miniprogram_server):
        user = UserFactory(wechat_unionid="u-union-3")
        code = miniprogram_server.issue_code("o-openid-3", unionid="u-union-3")

        response = api_client.post(LOGIN_URL, {"code": code}, format="json")

        assert response.json()["user"]["id"] == user.pk
        user.refresh_from_db()
        assert user.wechat_openid == "o-openid-3"


@pytest.mark.django_db
class TestBind:
    def test_a_password_account_binds_its_wechat(self, miniprogram_server):
        user = UserFactory()
        code = miniprogram_server.issue_code("o-bind-1", unionid="u-bind-1")

        response = bind(user, code)

        assert response.status_code == 200, response.content
        assert response.json() == {
            "user": {"id": user.pk, "username": user.username, "nickname": user.nickname}
        }
        user.refresh_from_db()
        assert (user.wechat_openid, user.wechat_unionid) == ("o-bind-1", "u-bind-1")
        entry = AuditEntry.objects.get(action="user.wechat_bound")
        assert entry.actor_id == user.pk and "o-bind-1" not in str(entry.changes)
        # and the WeChat login now opens the same account
        login = client_for(user).post(
            LOGIN_URL, {"code": miniprogram_server.issue_code("o-bind-1")}, format="json"
        )
        assert login.json()["user"]["id"] == user.pk

    def test_binding_the_same_wechat_again_is_a_no_op(self, miniprogram_server):
        user = UserFactory(wechat_openid="o-bind-2")

        assert bind(user, miniprogram_server.issue_code("o-bind-2")).status_code == 200
        assert not AuditEntry.objects.filter(action="user.wechat_bound").exists()

    def test_a_wechat_bound_to_another_account_is_409(self, miniprogram_server):
        UserFactory(wechat_openid="o-taken")
        user = UserFactory()

        response = bind(user, miniprogram_server.issue_code("o-taken"))

        assert response.status_code == 409 and error_code(response) == "wechat_already_bound"
        user.refresh_from_db()
        assert user.wechat_openid is None

    def test_a_unionid_of_another_account_is_409(self, miniprogram_server):
        UserFactory(wechat_unionid="u-taken")
        user = UserFactory()

        response = bind(user, miniprogram_server.issue_code("o-fresh", unionid="u-taken"))

        assert response.status_code == 409 and error_code(response) == "wechat_already_bound"

    def test_an_account_bound_to_another_wechat_is_409(self, miniprogram_server):
        user = UserFactory(wechat_openid="o-mine")

        response = bind(user, miniprogram_server.issue_code("o-other"))

        assert response.status_code == 409 and error_code(response) == "wechat_already_bound"
        user.refresh_from_db()
        assert user.wechat_openid == "o-mine"

    def test_binding_needs_a_login_and_a_good_code(self, api_client, miniprogram_server):
        assert api_client.post(BIND_URL, {"code": "x"}, format="json").status_code == 401
        response = bind(UserFactory(), "not-a-code")
        assert response.status_code == 400 and error_code(response) == "wechat_login_failed"


def _at_once(target, arguments) -> list:
    """Run ``target`` on each of ``arguments`` in threads released together; their results or error codes."""
    barrier, outcomes = threading.Barrier(len(arguments)), []

    def run(*args):
        try:
            barrier.wait()
            outcomes.append(target(*args))
        except Exception as exc:  # noqa: BLE001 - the outcome is what we assert
            outcomes.append(getattr(exc, "code", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)  # one committing test for both races (each costs a flush)
def test_concurrent_binds_and_first_logins_of_one_wechat_leave_one_account(miniprogram_server):
    users = [UserFactory(), UserFactory()]
    bound = _at_once(
        lambda user, code: user_bind_wechat(user=user, code=code, actor=user) and "bound",
        [(user, miniprogram_server.issue_code("o-race")) for user in users],
    )
    assert sorted(bound) == ["bound", "wechat_already_bound"]
    assert User.objects.filter(wechat_openid="o-race").count() == 1

    logins = _at_once(
        lambda code: user_login_wechat(code=code).pk,
        [(miniprogram_server.issue_code("o-twice", unionid="u-twice"),) for _ in range(2)],
    )
    assert len(logins) == 2 and logins[0] == logins[1]
    assert User.objects.filter(wechat_openid="o-twice", wechat_unionid="u-twice").count() == 1


class NeedsWechatIdentity(SandboxProvider):
    """Needs the payer's openid, like WeChat Pay (whose provider lives in commerce/payments/wechatpay/)."""

    name = "wechatpay"
    needs_wechat_identity = True


@pytest.mark.django_db
def test_after_binding_the_member_can_pay_by_wechat(wechatpay_server, miniprogram_server, monkeypatch):
    monkeypatch.setitem(base.PROVIDERS, "wechatpay", f"{__name__}.NeedsWechatIdentity")
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("10.00"), stock=5)
    member = MembershipFactory(community=community).user
    order = {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": 1}], "provider": "wechatpay"}

    refused = client_for(member).post("/api/v1/orders/", order, format="json")
    assert refused.status_code == 409 and error_code(refused) == "wechat_binding_required"

    assert bind(member, miniprogram_server.issue_code("o-payer")).status_code == 200
    placed = client_for(member).post("/api/v1/orders/", order, format="json")
    assert placed.status_code == 201, placed.content
    assert placed.json()["payment"]["provider"] == "wechatpay"
