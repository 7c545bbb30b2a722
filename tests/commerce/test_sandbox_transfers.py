"""Withdrawals paid through the sandbox's merchant transfer (the demo: no WeChat Pay configured)."""

import json
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.urls import reverse

from commerce.models import SandboxTransfer, WebhookEvent, Withdrawal
from commerce.payments import sandbox
from commerce.payments.wechatpay import transfers
from commerce.reports.roles import finance_user_grant
from commerce.services.withdrawals import withdrawal_available
from tests.commerce.test_withdrawals import settle
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/withdrawals/"
CONFIRM_URL = "/api/v1/payments/sandbox/transfer/confirm/"
NOTIFY_URL = "/api/v1/payments/sandbox/notify/"


@pytest.fixture(autouse=True)
def _sandbox_on(settings):
    """As in the embedded default: WeChat Pay not configured, the sandbox on."""
    settings.PAYMENT_SANDBOX_ENABLED = True
    settings.WECHATPAY_MCHID = ""


@pytest.fixture
def kol(db):
    user = UserFactory(wechat_openid="sandbox-openid-kol", nickname="推广员小李")
    membership = MembershipFactory(user=user, community=CommunityFactory(name="读书会"))
    settle(membership, "80.00")
    return membership


@pytest.fixture
def finance(client):
    client.force_login(finance_user_grant(user=UserFactory(username="caiwu_sandbox")))
    return client


def approve(client, withdrawal):
    """Finance approves in the admin, on the confirmation page."""
    url = reverse("admin:commerce_withdrawal_changelist")
    data = {"action": "approve_withdrawals", "_selected_action": [withdrawal.pk]}
    page = client.post(url, data)
    assert page.status_code == 200 and withdrawal.out_bill_no in page.content.decode()
    return client.post(url, {**data, "confirm": "yes", "note": "", "key": "k1"}, follow=True)


def requested(kol, amount="30.00") -> Withdrawal:
    response = client_for(kol.user).post(URL, {"amount": amount}, format="json")
    assert response.status_code == 201, response.content
    return Withdrawal.objects.get(pk=response.json()["id"])


def confirm(user, withdrawal_id):
    return client_for(user).post(CONFIRM_URL, {"withdrawal_id": withdrawal_id}, format="json")


def test_request_then_finance_approves_then_the_member_confirms_and_it_is_paid(
    kol, finance, django_capture_on_commit_callbacks
):
    assert transfers.transfer_provider() == "sandbox"
    withdrawal = requested(kol)

    page = approve(finance, withdrawal)

    assert page.status_code == 200
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION
    transfer = SandboxTransfer.objects.get(out_bill_no=withdrawal.out_bill_no)
    assert transfer.state == "WAIT_USER_CONFIRM" and transfer.amount == D("30.00")
    assert transfer.openid == kol.user.wechat_openid
    shown = client_for(kol.user).get(f"{URL}{withdrawal.pk}/").json()
    assert shown["status"] == "awaiting_confirmation" and shown["package_info"] == transfer.package_info
    assert (shown["mch_id"], shown["app_id"]) == ("sandbox", "sandbox")  # WeChat Pay's are unset here

    with django_capture_on_commit_callbacks() as queued:
        response = confirm(kol.user, withdrawal.pk)
    assert response.status_code == 202, response.content
    assert response.json()["transfer_state"] == "SUCCESS"
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION  # not until notified
    assert len(queued) == 1
    queued[0]()

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PAID and withdrawal.finished_at is not None
    assert withdrawal.transfer_bill_no == transfer.transfer_bill_no
    event = WebhookEvent.objects.get(provider="sandbox", type=sandbox.TRANSFER_FINISHED)
    assert event.outcome == WebhookEvent.Outcome.APPLIED
    assert withdrawal_available(user_id=kol.user_id) == D("50.00")
    assert client_for(kol.user).get(f"{URL}{withdrawal.pk}/").json()["status"] == "paid"

    # confirming again notifies again: the same notification, applied once
    with django_capture_on_commit_callbacks(execute=True):
        again = confirm(kol.user, withdrawal.pk)
    assert again.status_code == 202 and again.json()["withdrawal_status"] == "paid"
    assert WebhookEvent.objects.get(pk=event.pk).delivery_count == 2
    assert withdrawal_available(user_id=kol.user_id) == D("50.00")


def test_another_members_withdrawal_is_not_found_and_nothing_moves(
    kol, finance, django_capture_on_commit_callbacks
):
    withdrawal = requested(kol)
    approve(finance, withdrawal)
    stranger = UserFactory(wechat_openid="sandbox-openid-stranger")

    with django_capture_on_commit_callbacks() as queued:
        response = confirm(stranger, withdrawal.pk)

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not queued
    assert SandboxTransfer.objects.get(out_bill_no=withdrawal.out_bill_no).state == "WAIT_USER_CONFIRM"
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.AWAITING_CONFIRMATION


def test_a_withdrawal_not_approved_yet_cannot_be_confirmed(kol):
    withdrawal = requested(kol)

    response = confirm(kol.user, withdrawal.pk)

    assert response.status_code == 409 and response.json()["error"]["code"] == "transfer_not_confirmable"
    assert not SandboxTransfer.objects.exists()
    bad = confirm(kol.user, "x")
    assert bad.status_code == 400 and "withdrawal_id" in bad.json()["error"]["fields"]


def test_an_unconfirmed_transfer_is_cancelled_by_the_job_and_the_money_comes_back(kol, finance, settings):
    from datetime import timedelta

    from django.utils import timezone

    withdrawal = requested(kol)
    approve(finance, withdrawal)

    later = timezone.now() + timedelta(hours=settings.WITHDRAWAL_CONFIRM_HOURS + 1)
    call_command("run_jobs", "sync_withdrawals", "--now", later.isoformat())

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.CANCELLED
    assert SandboxTransfer.objects.get(out_bill_no=withdrawal.out_bill_no).state == "CANCELLED"
    assert withdrawal_available(user_id=kol.user_id) == D("80.00")
    assert confirm(kol.user, withdrawal.pk).status_code == 409


def test_a_forged_transfer_notification_is_refused(kol, finance, client):
    withdrawal = requested(kol)
    approve(finance, withdrawal)
    transfer = SandboxTransfer.objects.get(out_bill_no=withdrawal.out_bill_no)
    resource = {**sandbox._transfer_resource(transfer), "state": "SUCCESS"}
    body = json.dumps(
        {"id": "forged", "event_type": sandbox.TRANSFER_FINISHED, "resource": resource}
    ).encode()
    headers = sandbox.sign_notification(body)
    headers["Sandbox-Signature"] = "AAAA" + headers["Sandbox-Signature"][4:]

    response = client.post(
        NOTIFY_URL,
        body,
        content_type="application/json",
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    )

    assert response.status_code == 400
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.AWAITING_CONFIRMATION
    assert not WebhookEvent.objects.exists()


def test_with_the_sandbox_off_transfers_go_to_wechat_pay_and_the_endpoint_is_gone(kol, settings):
    settings.PAYMENT_SANDBOX_ENABLED = False

    assert transfers.transfer_provider() == "wechatpay"
    assert confirm(kol.user, 1).status_code == 404
