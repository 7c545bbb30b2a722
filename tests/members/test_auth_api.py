"""Register, login (throttled), WeChat login, bearer auth and the profile."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from members.models import User
from members.services.users import user_token
from tests.members.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


class TestRegister:
    def test_register_returns_token_and_user(self, api_client):
        response = api_client.post(
            "/api/v1/auth/register/",
            {"username": "xiaoming", "password": "s3cret-pass-99", "nickname": "小明"},
            format="json",
        )
        assert response.status_code == 201
        body = response.json()
        assert body["user"]["username"] == "xiaoming"
        assert body["user"]["nickname"] == "小明"
        assert len(body["token"]) == 64
        assert User.objects.get(username="xiaoming").check_password("s3cret-pass-99")

    def test_taken_username_is_refused_case_insensitively(self, api_client):
        UserFactory(username="Xiaoming")
        response = api_client.post(
            "/api/v1/auth/register/", {"username": "xiaoming", "password": "s3cret-pass-99"}, format="json"
        )
        error = assert_error(response, 400, "validation_error")
        assert "username" in error["fields"]
        assert User.objects.filter(username__iexact="xiaoming").count() == 1

    def test_missing_fields_are_named(self, api_client):
        error = assert_error(
            api_client.post("/api/v1/auth/register/", {}, format="json"), 400, "validation_error"
        )
        assert set(error["fields"]) == {"username", "password"}

    def test_weak_password_is_refused_and_nothing_is_written(self, api_client):
        response = api_client.post(
            "/api/v1/auth/register/", {"username": "weakling", "password": "123"}, format="json"
        )
        error = assert_error(response, 400, "validation_error")
        assert "password" in error["fields"]
        assert not User.objects.filter(username="weakling").exists()

    @pytest.mark.parametrize(
        "payload",
        [
            {"username": ["a"], "password": "s3cret-pass-99"},
            {"username": 12, "password": {"x": 1}},
            {"username": "x" * 151, "password": "s3cret-pass-99"},
            {"username": "ok_name", "password": "p" * 129},
            {"username": "ok_name", "password": "s3cret-pass-99", "nickname": "长" * 65},
            {"username": "bad name!", "password": "s3cret-pass-99"},
        ],
    )
    def test_wrong_types_and_oversized_strings_are_400(self, api_client, payload):
        assert_error(
            api_client.post("/api/v1/auth/register/", payload, format="json"), 400, "validation_error"
        )

    def test_bad_json_is_400_parse_error(self, api_client):
        response = api_client.post("/api/v1/auth/register/", '{"username": ', content_type="application/json")
        assert_error(response, 400, "parse_error")

    def test_non_object_json_is_400(self, api_client):
        response = api_client.post("/api/v1/auth/register/", "[1, 2]", content_type="application/json")
        assert_error(response, 400, "validation_error")

    def test_wrong_content_type_is_415(self, api_client):
        response = api_client.post("/api/v1/auth/register/", "username=a", content_type="text/plain")
        assert_error(response, 415, "unsupported_media_type")


class TestLogin:
    def test_each_login_returns_a_new_token_and_both_devices_stay_logged_in(self, api_client):
        user = UserFactory()
        first = api_client.post(
            "/api/v1/auth/login/", {"username": user.username, "password": PASSWORD}, format="json"
        )
        second = api_client.post(
            "/api/v1/auth/login/", {"username": user.username, "password": PASSWORD}, format="json"
        )
        assert first.status_code == second.status_code == 200
        assert first.json()["token"] != second.json()["token"]
        assert first.json()["user"] == {"id": user.id, "username": user.username, "nickname": user.nickname}
        for body in (first.json(), second.json()):
            assert bearer(body["token"]).get("/api/v1/me/").status_code == 200

    def test_bad_credentials_are_400(self, api_client):
        user = UserFactory()
        response = api_client.post(
            "/api/v1/auth/login/", {"username": user.username, "password": "nope"}, format="json"
        )
        assert_error(response, 400, "invalid_credentials")

    def test_login_is_throttled_after_ten_attempts_a_minute(self, api_client):
        user = UserFactory()
        for _ in range(10):
            response = api_client.post(
                "/api/v1/auth/login/", {"username": user.username, "password": "x"}, format="json"
            )
            assert response.status_code == 400
        response = api_client.post(
            "/api/v1/auth/login/", {"username": user.username, "password": PASSWORD}, format="json"
        )
        assert_error(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0


def bearer(token: str):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


class TestBearerAuth:
    def test_me_without_token_is_401_json(self, api_client):
        assert_error(api_client.get("/api/v1/me/"), 401, "not_authenticated")

    def test_wrong_scheme_or_token_is_401(self, api_client):
        token = user_token(user=UserFactory())
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert api_client.get("/api/v1/me/").status_code == 401
        api_client.credentials(HTTP_AUTHORIZATION="Bearer " + "0" * 64)
        assert_error(api_client.get("/api/v1/me/"), 401, "authentication_failed")

    @pytest.mark.parametrize("token", ["0" * 40, "Z" * 64, "\x00" * 64, "é" * 64, "a" * 10_000])
    def test_malformed_tokens_are_401_not_500(self, api_client, token):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_error(api_client.get("/api/v1/me/"), 401, "authentication_failed")

    def test_session_cookie_does_not_authenticate_the_api(self, client):
        user = UserFactory()
        client.force_login(user)
        assert client.get("/api/v1/me/").status_code == 401


class TestProfile:
    def test_get_me(self, user_client, user):
        body = user_client.get("/api/v1/me/").json()
        assert body == {"id": user.id, "username": user.username, "nickname": user.nickname, "interests": []}

    def test_patch_interests_normalises_and_replaces(self, user_client):
        response = user_client.patch(
            "/api/v1/me/",
            {"nickname": "跑步的阿强", "interests": [" 跑步 ", "马拉松", "跑步", "Running", "running"]},
            format="json",
        )
        assert response.status_code == 200
        assert response.json()["interests"] == ["跑步", "马拉松", "Running"]
        assert response.json()["nickname"] == "跑步的阿强"
        response = user_client.patch("/api/v1/me/", {"interests": ["摄影"]}, format="json")
        assert response.json()["interests"] == ["摄影"]
        assert user_client.get("/api/v1/me/").json()["interests"] == ["摄影"]

    @pytest.mark.parametrize(
        "payload",
        [
            {"interests": "跑步"},
            {"interests": ["x" * 33]},
            {"interests": [""]},
            {"interests": ["a"] * 31},
            {"nickname": None},
        ],
    )
    def test_bad_profile_input_is_400_and_changes_nothing(self, user_client, user, payload):
        before = user.nickname
        assert_error(user_client.patch("/api/v1/me/", payload, format="json"), 400, "validation_error")
        user.refresh_from_db()
        assert user.nickname == before
        assert user.interests.count() == 0

    def test_protected_fields_are_ignored(self, user_client, user):
        user_client.patch("/api/v1/me/", {"username": "hijack", "is_staff": True, "id": 999}, format="json")
        user.refresh_from_db()
        assert (user.username, user.is_staff) != ("hijack", True)
        assert not user.is_staff


# Scripted answers of the stand-in, by login code: (HTTP status, body).
ODD_ANSWERS = {
    "busy": (200, b'{"errcode": -1, "errmsg": "system error"}'),
    "quota": (200, b'{"errcode": 45011, "errmsg": "api minute-quota reach limit"}'),
    "list": (200, b'[{"openid": "openid-list"}]'),
    "long-openid": (200, json.dumps({"openid": "o" * 65, "session_key": "sk"}).encode()),
    "nul-openid": (200, json.dumps({"openid": "open\u0000id", "session_key": "sk"}).encode()),
    "number-openid": (200, b'{"openid": 12345678901234567890, "session_key": "sk"}'),
    "odd-unionid": (200, b'{"openid": "openid-u", "unionid": ["x"], "session_key": "sk"}'),
    "list-errcode": (200, b'{"errcode": [-1], "errmsg": "?"}'),
    "html": (200, b"<html>gateway</html>"),
    "deep": (200, b"[" * 5000 + b"]" * 5000),
    "gateway-down": (502, b"<html>bad gateway</html>"),
}


class _FakeWechat(BaseHTTPRequestHandler):
    """A local stand-in for api.weixin.qq.com/sns/jscode2session."""

    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)
        code = query["js_code"][0]
        self.server.calls.append(query)
        status = 200
        if code.startswith("good-"):
            payload = json.dumps({"openid": f"openid-{code[5:]}", "session_key": "sk"}).encode()
        elif code in ODD_ANSWERS:
            status, payload = ODD_ANSWERS[code]
        else:
            payload = json.dumps({"errcode": 40029, "errmsg": "invalid code"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        """``/cgi-bin/stable_token`` and ``/wxa/business/getuserphonenumber`` (codes ``good-...``)."""
        path = urlparse(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}")
        if path == "/cgi-bin/stable_token":
            answer = {"access_token": "fake-token", "expires_in": 7200}
        elif path == "/wxa/business/getuserphonenumber" and str(data.get("code", "")).startswith("good-"):
            phone = {"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86",
                     "watermark": {"timestamp": 1764633600, "appid": "wx-test-app"}}  # fmt: skip
            answer = {"errcode": 0, "errmsg": "ok", "phone_info": phone}
        else:
            answer = {"errcode": 40029, "errmsg": "invalid code"}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_wechat(settings):
    server = HTTPServer(("127.0.0.1", 0), _FakeWechat)
    server.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.WECHAT_API_BASE = f"http://127.0.0.1:{server.server_port}"
    settings.WECHAT_APP_ID = "wx-test-app"
    yield server
    server.shutdown()
    server.server_close()


class TestWechatLogin:
    def test_first_login_creates_a_user_and_second_finds_it(self, api_client, fake_wechat):
        first = api_client.post("/api/v1/auth/wechat/", {"code": "good-abc"}, format="json")
        second = api_client.post("/api/v1/auth/wechat/", {"code": "good-abc"}, format="json")
        assert first.status_code == second.status_code == 200
        assert first.json()["user"]["id"] == second.json()["user"]["id"]
        user = User.objects.get(wechat_openid="openid-abc")
        assert not user.has_usable_password()
        assert fake_wechat.calls[0]["appid"] == ["wx-test-app"]
        assert fake_wechat.calls[0]["grant_type"] == ["authorization_code"]

    def test_code_refused_by_wechat_is_400(self, api_client, fake_wechat):
        assert_error(
            api_client.post("/api/v1/auth/wechat/", {"code": "bad"}, format="json"),
            400,
            "wechat_login_failed",
        )
        assert not User.objects.exists()

    def test_wechat_down_is_503(self, api_client, settings):
        settings.WECHAT_API_BASE = "http://127.0.0.1:9"
        assert_error(
            api_client.post("/api/v1/auth/wechat/", {"code": "good-x"}, format="json"),
            503,
            "wechat_unavailable",
        )

    @pytest.mark.parametrize("code", ["busy", "quota"])
    def test_wechat_busy_is_a_retryable_503_not_a_failed_login(self, api_client, fake_wechat, code):
        error = assert_error(
            api_client.post("/api/v1/auth/wechat/", {"code": code}, format="json"), 503, "wechat_busy"
        )
        assert error["message"]
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        "code", ["list", "long-openid", "nul-openid", "number-openid", "odd-unionid", "html", "deep"]
    )
    def test_an_odd_answer_from_wechat_is_a_502_and_creates_no_user(self, api_client, fake_wechat, code):
        assert_error(
            api_client.post("/api/v1/auth/wechat/", {"code": code}, format="json"), 502, "wechat_bad_answer"
        )
        assert not User.objects.exists()

    def test_an_odd_error_code_is_a_failed_login(self, api_client, fake_wechat):
        assert_error(
            api_client.post("/api/v1/auth/wechat/", {"code": "list-errcode"}, format="json"),
            400,
            "wechat_login_failed",
        )

    def test_wechat_answering_5xx_is_503_unavailable(self, api_client, fake_wechat):
        assert_error(
            api_client.post("/api/v1/auth/wechat/", {"code": "gateway-down"}, format="json"),
            503,
            "wechat_unavailable",
        )
