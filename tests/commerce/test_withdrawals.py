"""Withdrawals (提现): request, finance review, WeChat Pay merchant transfer, notifications, the ledger."""

import time
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from commerce.models import CommissionEntry, Notification, WebhookEvent, Withdrawal
from commerce.payments import base
from commerce.reports.roles import finance_user_grant
from commerce.services.withdrawals import withdrawal_apply_transfer, withdrawal_available
from shequn_backend.models import AuditEntry
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/me/withdrawals/"


def settle(membership, amount: str, key: str = "s1") -> CommissionEntry:
    """Settled commission on the member's ledger (what settle_commissions writes)."""
    return CommissionEntry.objects.create(
        beneficiary=membership,
        kind=CommissionEntry.Kind.SETTLEMENT,
        amount=D(amount),
        idempotency_key=f"test:{key}",
    )


@pytest.fixture
def kol(db):
    user = UserFactory(wechat_openid="oKol000000000000000000000001", nickname="推广员小王")
    membership = MembershipFactory(user=user, community=CommunityFactory(name="读书会"))
    settle(membership, "300.00")
    return membership


@pytest.fixture
def kol_client(kol):
    return client_for(kol.user)


@pytest.fixture
def finance(client):
    client.force_login(finance_user_grant(user=UserFactory(username="caiwu_test")))
    return client


def ask(client, amount: str, **extra):
    return client.post(URL, {"amount": amount, **extra}, format="json")


def review(client, withdrawal, action: str, note: str = ""):
    """The admin action, confirmed on its confirmation page."""
    url = reverse("admin:commerce_withdrawal_changelist")
    data = {"action": action, "_selected_action": [withdrawal.pk]}
    page = client.post(url, data)
    assert page.status_code == 200 and withdrawal.out_bill_no in page.content.decode()
    return client.post(url, {**data, "confirm": "yes", "note": note, "key": "k1"})


def sync_at(moment) -> None:
    call_command("run_jobs", "sync_withdrawals", "--now", moment.isoformat())


def balance(membership) -> D:
    return withdrawal_available(user_id=membership.user_id)


def test_a_withdrawal_goes_from_request_to_paid_through_wechat_pay(
    kol, kol_client, finance, wechatpay_server
):
    response = ask(kol_client, "120.50")

    assert response.status_code == 201, response.json()
    answer = response.json()
    assert answer["status"] == "requested" and answer["amount"] == "120.50" and answer["currency"] == "CNY"
    assert balance(kol) == D("179.50")  # debited at request time
    withdrawal = Withdrawal.objects.get(pk=answer["id"])

    review(finance, withdrawal, "approve_withdrawals")

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION and withdrawal.reviewed_by is not None
    sent = wechatpay_server.transfers[withdrawal.out_bill_no].request
    assert sent["transfer_amount"] == 12050 and sent["openid"] == kol.user.wechat_openid
    assert sent["transfer_scene_id"] == "1005" and len(sent["transfer_remark"]) <= 32
    assert {info["info_type"] for info in sent["transfer_scene_report_infos"]} == {"岗位类型", "报酬说明"}
    assert sent["notify_url"].endswith("/api/v1/payments/wechatpay/notify/") and "user_name" not in sent
    shown = kol_client.get(f"{URL}{withdrawal.pk}/").json()
    assert shown["status"] == "awaiting_confirmation" and shown["package_info"]

    wechatpay_server.settle_transfer(withdrawal.out_bill_no, "SUCCESS")  # the member confirmed

    assert wechatpay_server.deliveries[-1].status == 204
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PAID and withdrawal.finished_at is not None
    assert kol_client.get(URL).json()["results"][0]["status"] == "paid"
    assert balance(kol) == D("179.50")
    event = WebhookEvent.objects.get(type="MCHTRANSFER.BILL.FINISHED")
    assert event.outcome == WebhookEvent.Outcome.APPLIED
    actions = list(
        AuditEntry.objects.filter(target_id=str(withdrawal.pk), action__startswith="withdrawal.")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [
        "withdrawal.requested",
        "withdrawal.approved",
        "withdrawal.transfer_started",
        "withdrawal.awaiting_confirmation",
        "withdrawal.paid",
    ]
    told = Notification.objects.get(user=kol.user, kind="payout")
    assert told.key == f"withdrawal:{withdrawal.pk}:paid" and told.data["status"] == "已到账"
    assert told.data["amount"] == "120.50" and "120.50" in told.body


@pytest.mark.parametrize(("state", "status"), [("FAIL", "failed"), ("CANCELLED", "cancelled")])
def test_a_failed_or_cancelled_transfer_returns_the_money_once(
    kol, kol_client, finance, wechatpay_server, state, status
):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "300.00").json()["id"])
    review(finance, withdrawal, "approve_withdrawals")
    assert balance(kol) == D("0.00")
    wechatpay_server.notify_mode = "twice"

    wechatpay_server.settle_transfer(withdrawal.out_bill_no, state)
    wechatpay_server.deliver(wechatpay_server.notifications[-1])

    withdrawal.refresh_from_db()
    assert withdrawal.status == status and balance(kol) == D("300.00")
    assert withdrawal.entries.filter(kind=CommissionEntry.Kind.RETURNED).count() == 1
    assert WebhookEvent.objects.get(type="MCHTRANSFER.BILL.FINISHED").delivery_count == 3
    if state == "FAIL":
        assert withdrawal.fail_reason == "PAYEE_ACCOUNT_ABNORMAL"
    told = Notification.objects.get(user=kol.user, kind="payout")  # once, though notified twice
    assert told.data["status"] == {"FAIL": "转账失败", "CANCELLED": "已取消"}[state]


def test_a_late_or_repeated_state_never_undoes_a_final_one(kol, kol_client, finance, wechatpay_server):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "100.00").json()["id"])
    review(finance, withdrawal, "approve_withdrawals")
    wechatpay_server.notify_mode = "hold"
    wechatpay_server.settle_transfer(withdrawal.out_bill_no, "FAIL")
    failed = wechatpay_server.held[-1]

    # The job finds the final state first (the notification is late), then it arrives.
    call_command("run_jobs", "sync_withdrawals", "--now", (timezone.now() + timedelta(hours=1)).isoformat())
    wechatpay_server.deliver(failed)
    stale = base.TransferState(
        reference=withdrawal.out_bill_no, state="WAIT_USER_CONFIRM", amount=D("100.00")
    )
    withdrawal_apply_transfer(actor="test", state=stale)  # e.g. a slow create answer

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.FAILED and balance(kol) == D("300.00")
    assert withdrawal.entries.filter(kind=CommissionEntry.Kind.RETURNED).count() == 1
    assert wechatpay_server.deliveries[-1].status == 204


def test_an_unanswered_transfer_is_found_by_the_job_and_an_unconfirmed_one_cancelled(
    kol, kol_client, finance, wechatpay_server
):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "50.00").json()["id"])
    wechatpay_server.fail_next(500, "SYSTEM_ERROR", count=1)

    response = review(finance, withdrawal, "approve_withdrawals")

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.TRANSFERRING
    assert "sync_withdrawals" in response.wsgi_request._messages._queued_messages[0].message
    later = timezone.now() + timedelta(minutes=10)
    call_command("run_jobs", "sync_withdrawals", "--now", later.isoformat())
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION and withdrawal.package_info

    # Nobody confirms for a day: the job cancels it at WeChat; WeChat reports it cancelled.
    call_command("run_jobs", "sync_withdrawals", "--now", (later + timedelta(hours=25)).isoformat())
    assert wechatpay_server.transfers[withdrawal.out_bill_no].state == "CANCELING"
    wechatpay_server.settle_transfer(withdrawal.out_bill_no, "CANCELLED")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.CANCELLED and balance(kol) == D("300.00")


def test_from_2000_yuan_the_real_name_is_required_and_sent_encrypted(finance, wechatpay_server):
    user = UserFactory(wechat_openid="oKolBig00000000000000000001")
    membership = MembershipFactory(user=user)
    settle(membership, "2500.00")
    client = client_for(user)

    refused = ask(client, "2000.00")
    assert refused.status_code == 400 and "real_name" in refused.json()["error"]["fields"]
    assert not Withdrawal.objects.exists() and balance(membership) == D("2500.00")

    withdrawal = Withdrawal.objects.get(pk=ask(client, "2000.00", real_name="张三").json()["id"])
    review(finance, withdrawal, "approve_withdrawals")

    transfer = wechatpay_server.transfers[withdrawal.out_bill_no]
    assert transfer.request["user_name"] != "张三"  # ciphertext: only WeChat Pay's private key opens it
    assert transfer.user_name == "张三"
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION and withdrawal.real_name == "张三"
    wechatpay_server.settle_transfer(withdrawal.out_bill_no, "SUCCESS")
    withdrawal.refresh_from_db()
    assert (
        withdrawal.status == Withdrawal.Status.PAID and withdrawal.real_name == ""
    )  # not kept past the transfer


def test_below_the_minimum_above_the_balance_or_without_wechat_nothing_is_written(kol, kol_client, settings):
    settings.WITHDRAWAL_MINIMUM = D("10.00")
    too_small = ask(kol_client, "9.99")
    too_big = ask(kol_client, "300.01")
    not_money = ask(kol_client, "abc")
    no_wechat = ask(client_for(MembershipFactory().user), "10.00")

    assert too_small.status_code == 400 and too_small.json()["error"]["code"] == "amount_below_minimum"
    assert too_big.status_code == 409 and too_big.json()["error"]["code"] == "insufficient_balance"
    assert not_money.status_code == 400 and "amount" in not_money.json()["error"]["fields"]
    assert no_wechat.status_code == 409 and no_wechat.json()["error"]["code"] == "wechat_binding_required"
    assert not Withdrawal.objects.exists() and balance(kol) == D("300.00")


def test_no_withdrawal_while_a_communitys_balance_is_negative(kol, kol_client):
    other = MembershipFactory(user=kol.user)
    CommissionEntry.objects.create(
        beneficiary=other, kind=CommissionEntry.Kind.ADJUSTMENT, amount=D("-20.00"), idempotency_key="neg"
    )

    response = ask(kol_client, "10.00")

    assert response.status_code == 409 and response.json()["error"]["code"] == "negative_balance"
    assert not Withdrawal.objects.exists()


def test_the_fee_is_recorded_and_the_transfer_is_the_rest(
    kol, kol_client, finance, settings, wechatpay_server
):
    settings.WITHDRAWAL_FEE_RATE = D("0.006")
    answer = ask(kol_client, "100.00").json()
    withdrawal = Withdrawal.objects.get(pk=answer["id"])

    review(finance, withdrawal, "approve_withdrawals")

    assert answer["fee"] == "0.60" and balance(kol) == D("200.00")
    assert wechatpay_server.transfers[withdrawal.out_bill_no].request["transfer_amount"] == 9940


def test_a_withdrawal_draws_from_several_communities_and_a_rejection_returns_each_part(
    kol, kol_client, finance
):
    second = MembershipFactory(user=kol.user)
    settle(second, "50.00", key="s2")

    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "320.00").json()["id"])
    parts = dict(withdrawal.entries.values_list("beneficiary_id", "amount"))
    assert parts == {kol.pk: D("-300.00"), second.pk: D("-20.00")}

    review(finance, withdrawal, "reject_withdrawals", note="资料不全")

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REJECTED and withdrawal.review_note == "资料不全"
    assert balance(kol) == D("350.00")
    assert kol_client.get(f"{URL}{withdrawal.pk}/").json()["status"] == "rejected"


def test_a_rejection_needs_a_reason_and_a_decided_withdrawal_is_left_alone(kol, kol_client, finance):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "20.00").json()["id"])
    url = reverse("admin:commerce_withdrawal_changelist")
    data = {"action": "reject_withdrawals", "_selected_action": [withdrawal.pk], "confirm": "yes", "key": "k"}

    page = finance.post(url, {**data, "note": ""})
    assert page.status_code == 200  # the confirmation page again, asking why
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED

    review(finance, withdrawal, "reject_withdrawals", note="重复申请")
    again = finance.post(url, {**data, "action": "approve_withdrawals"}, follow=True)
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REJECTED and balance(kol) == D("300.00")
    assert "只有" in again.content.decode() or "only" in again.content.decode()


def test_replaying_the_idempotency_key_answers_the_same_withdrawal(kol, kol_client):
    first = kol_client.post(URL, {"amount": "30.00"}, format="json", HTTP_IDEMPOTENCY_KEY="w-1")
    again = kol_client.post(URL, {"amount": "30.00"}, format="json", HTTP_IDEMPOTENCY_KEY="w-1")

    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert balance(kol) == D("270.00")


def test_another_members_withdrawal_is_not_found(kol, kol_client):
    withdrawal_id = ask(kol_client, "30.00").json()["id"]
    stranger = client_for(UserFactory())

    assert stranger.get(f"{URL}{withdrawal_id}/").status_code == 404
    assert stranger.get(URL).json()["count"] == 0
    assert client_for(kol.user).get(f"{URL}{withdrawal_id}/").status_code == 200


def test_only_finance_staff_see_and_review_withdrawals(kol, kol_client, client):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "30.00").json()["id"])
    owner = kol.community.owner
    owner.is_staff = True
    owner.save()
    client.force_login(owner)
    url = reverse("admin:commerce_withdrawal_changelist")

    assert client.get(url).status_code == 403
    data = {
        "action": "approve_withdrawals",
        "_selected_action": [withdrawal.pk],
        "confirm": "yes",
        "key": "k",
    }
    assert client.post(url, data).status_code == 403
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED


def test_the_withdrawals_report_lists_every_ledger_movement(kol, kol_client, finance, tmp_path):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "40.00").json()["id"])
    review(finance, withdrawal, "reject_withdrawals", note="测试")
    output = tmp_path / "w.csv"
    day = timezone.localdate()

    call_command(
        "export_report",
        "withdrawals",
        "--from",
        (day - timedelta(days=1)).isoformat(),
        "--to",
        (day + timedelta(days=1)).isoformat(),
        "--output",
        str(output),
        "--lang",
        "en",
    )

    text = output.read_bytes().decode("utf-8-sig")
    assert text.count(withdrawal.out_bill_no) == 2
    assert "-40.00" in text and "Payout returned" in text


@pytest.mark.django_db(transaction=True)
def test_two_racing_withdrawals_of_the_whole_balance_leave_exactly_one(kol):
    """Real threads and transactions: the user's row lock lets one request read the balance at a time."""
    from tests.commerce.test_concurrency import run_together

    clients = [client_for(kol.user) for _ in range(2)]
    responses = run_together([lambda c=c: ask(c, "300.00") for c in clients], threads=2)

    assert sorted(r.status_code for r in responses) == [201, 409]
    assert [r.json()["error"]["code"] for r in responses if r.status_code == 409] == ["insufficient_balance"]
    assert Withdrawal.objects.count() == 1 and balance(kol) == D("0.00")
    assert CommissionEntry.objects.filter(kind=CommissionEntry.Kind.PAYOUT).count() == 1


@pytest.mark.django_db(transaction=True)
def test_many_racing_withdrawals_never_draw_more_than_the_balance(kol):
    from tests.commerce.test_concurrency import run_together

    clients = [client_for(kol.user) for _ in range(8)]
    responses = run_together([lambda c=c: ask(c, "70.00") for c in clients], threads=8)

    assert sorted(r.status_code for r in responses) == [201] * 4 + [409] * 4
    assert balance(kol) == D("20.00")


def test_a_transfer_wechat_refuses_fails_and_returns_the_money(kol, kol_client, finance, wechatpay_server):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "60.00").json()["id"])
    wechatpay_server.fail_next(400, "PARAM_ERROR", "输入源“/body/openid”映射到值字段“openid”格式不符")

    response = review(finance, withdrawal, "approve_withdrawals")

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.FAILED and "PARAM_ERROR" in withdrawal.fail_reason
    assert balance(kol) == D("300.00") and withdrawal.out_bill_no not in wechatpay_server.transfers
    assert "PARAM_ERROR" in response.wsgi_request._messages._queued_messages[0].message


@pytest.mark.parametrize("code", ["NOT_ENOUGH", "SOMETHING_NEW"])
def test_a_refusal_to_retry_keeps_the_bill_and_sends_the_same_one_again(
    kol, kol_client, finance, wechatpay_server, code
):
    """NOT_ENOUGH: "top up, then retry with the same out_bill_no"; an unknown code: never a new bill."""
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "60.00").json()["id"])
    if code == "NOT_ENOUGH":
        wechatpay_server.merchant_balance = 100  # fen: the operating account is nearly empty
    else:
        wechatpay_server.fail_next(403, code, "新的错误码")

    response = review(finance, withdrawal, "approve_withdrawals")

    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.wechat_state) == (Withdrawal.Status.TRANSFERRING, code)
    assert balance(kol) == D("240.00") and not withdrawal.entries.filter(kind=CommissionEntry.Kind.RETURNED)
    assert code in response.wsgi_request._messages._queued_messages[0].message
    if code == "NOT_ENOUGH":  # still short at the next round: nothing changes, no new bill
        sync_at(timezone.now() + timedelta(minutes=10))
        assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.TRANSFERRING

    wechatpay_server.merchant_balance = None  # topped up
    sync_at(timezone.now() + timedelta(minutes=20))

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION and withdrawal.package_info
    assert list(wechatpay_server.transfers) == [withdrawal.out_bill_no]
    bills = {r.json["out_bill_no"] for r in wechatpay_server.requests if r.path.endswith("/transfer-bills")}
    assert bills == {withdrawal.out_bill_no}


def test_the_answer_carries_what_wx_request_merchant_transfer_needs(
    kol, kol_client, finance, wechatpay_server, settings
):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "60.00").json()["id"])
    waiting = kol_client.get(f"{URL}{withdrawal.pk}/").json()
    assert (waiting["package_info"], waiting["mch_id"], waiting["app_id"]) == (None, None, None)

    review(finance, withdrawal, "approve_withdrawals")

    shown = kol_client.get(f"{URL}{withdrawal.pk}/").json()
    created = wechatpay_server.transfers[withdrawal.out_bill_no]
    assert shown["mch_id"] == settings.WECHATPAY_MCHID == wechatpay_server.config.mchid
    assert shown["app_id"] == created.request["appid"] == settings.WECHAT_APP_ID
    assert shown["package_info"] and shown["status"] == "awaiting_confirmation"
    wechatpay_server.settle_transfer(withdrawal.out_bill_no, "SUCCESS")
    assert kol_client.get(f"{URL}{withdrawal.pk}/").json()["mch_id"] is None


def test_what_we_send_is_exactly_the_documented_body(kol, kol_client, finance, wechatpay_server, settings):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "60.00").json()["id"])
    review(finance, withdrawal, "approve_withdrawals")

    sent = wechatpay_server.transfers[withdrawal.out_bill_no].request
    assert sent == {
        "appid": settings.WECHAT_APP_ID,
        "out_bill_no": withdrawal.out_bill_no,
        "transfer_scene_id": "1005",
        "openid": kol.user.wechat_openid,
        "transfer_amount": 6000,
        "transfer_remark": settings.WITHDRAWAL_TRANSFER_REMARK,
        "notify_url": settings.WECHATPAY_NOTIFY_URL,
        "transfer_scene_report_infos": [
            {"info_type": "岗位类型", "info_content": settings.WITHDRAWAL_JOB_TYPE},
            {"info_type": "报酬说明", "info_content": settings.WITHDRAWAL_PAY_DESCRIPTION},
        ],
    }
    request = next(r for r in wechatpay_server.requests if r.path.endswith("/transfer-bills"))
    assert request.headers["wechatpay-serial"] == settings.WECHATPAY_PUBLIC_KEY_ID


def test_a_transfer_notification_that_is_not_ours_is_ignored(kol, kol_client, finance, wechatpay_server):
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "60.00").json()["id"])
    review(finance, withdrawal, "approve_withdrawals")
    wechatpay_server.notify_mode = "hold"
    wechatpay_server.settle_transfer(withdrawal.out_bill_no, "SUCCESS")
    ours = wechatpay_server.held[-1]
    Withdrawal.objects.filter(pk=withdrawal.pk).update(
        out_bill_no="WDOTHER0001"
    )  # WeChat names a bill we lack

    delivery = wechatpay_server.deliver(ours)

    assert delivery.status == 204  # taken (WeChat stops retrying) but nothing changes
    assert WebhookEvent.objects.get(type="MCHTRANSFER.BILL.FINISHED").outcome == WebhookEvent.Outcome.IGNORED
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.AWAITING_CONFIRMATION


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("WECHATPAY_TRANSFER_SCENE_ID", "1000", "commerce.E006"),
        ("WITHDRAWAL_TRANSFER_REMARK", "", "commerce.E007"),
        ("WITHDRAWAL_TRANSFER_REMARK", "佣" * 33, "commerce.E007"),
        ("WITHDRAWAL_JOB_TYPE", "  ", "commerce.E007"),
        ("WITHDRAWAL_PAY_DESCRIPTION", "说" * 33, "commerce.E007"),
        ("WITHDRAWAL_FEE_RATE", D("0.5"), "commerce.E008"),  # 10.00 less 5.00 is fine ...
    ],
)
def test_transfer_settings_wechat_would_refuse_fail_the_checks(settings, name, value, check_id):
    from commerce.payments.checks import transfer_settings_fit_wechat_pay

    assert transfer_settings_fit_wechat_pay() == []
    setattr(settings, name, value)
    if check_id == "commerce.E008":
        settings.WITHDRAWAL_MINIMUM = D("0.15")  # ... 0.15 less 0.08 is below WeChat's 0.10

    assert [error.id for error in transfer_settings_fit_wechat_pay()] == [check_id]


def test_a_withdrawal_whose_transfer_would_be_below_ten_fen_is_refused(kol, kol_client, settings):
    settings.WITHDRAWAL_MINIMUM, settings.WITHDRAWAL_FEE_RATE = D("0.10"), D("0.5")

    response = ask(kol_client, "0.15")

    assert response.status_code == 400 and "amount" in response.json()["error"]["fields"]
    assert not Withdrawal.objects.exists() and balance(kol) == D("300.00")


def test_a_transfer_whose_answer_is_lost_is_found_by_its_out_bill_no_never_sent_anew(
    kol, kol_client, finance, wechatpay_server, settings
):
    """WeChat made the bill but we timed out: the job finds it by the same out_bill_no."""
    withdrawal = Withdrawal.objects.get(pk=ask(kol_client, "50.00").json()["id"])
    settings.WECHATPAY_TIMEOUT_SECONDS = 0.3
    wechatpay_server.hang = 0.8

    review(finance, withdrawal, "approve_withdrawals")

    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.TRANSFERRING
    for _ in range(50):  # WeChat finishes the request we stopped waiting for
        if withdrawal.out_bill_no in wechatpay_server.transfers:
            break
        time.sleep(0.1)
    wechatpay_server.hang = 0
    sync_at(timezone.now() + timedelta(minutes=10))

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION and withdrawal.package_info
    # Found by query (which has no package_info), then asked again as the same bill for its package_info.
    sent = [(r.method, r.path.rsplit("/", 1)[-1]) for r in wechatpay_server.requests]
    assert sent == [("POST", "transfer-bills"), ("GET", withdrawal.out_bill_no), ("POST", "transfer-bills")]
    posted = {r.json["out_bill_no"] for r in wechatpay_server.requests if r.method == "POST"}
    assert posted == {withdrawal.out_bill_no} and list(wechatpay_server.transfers) == [withdrawal.out_bill_no]
