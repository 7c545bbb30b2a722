"""The README's run mode: SQLite, eager tasks, demo data, admin and API served."""

import subprocess
import sys

import pytest
import requests

from tests.shequn_backend.processes import ROOT, clean_env, free_port, manage, wait_for_http


@pytest.mark.slow
def test_embedded_default_migrates_seeds_and_serves(tmp_path):
    # As `make run`: no payment provider configured but the sandbox (the test settings name Stripe).
    env = clean_env(
        DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}", STRIPE_SECRET_KEY=""
    )
    migrate = manage("migrate", "--no-input", env=env, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    seed = manage("seed_demo", env=env, timeout=300)
    assert seed.returncode == 0, seed.stderr
    assert "admin" in seed.stdout and "demo-pass" in seed.stdout

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{base}/healthz", process=server).json() == {"status": "ok"}
        admin = wait_for_http(f"{base}/admin/login/")
        assert admin.status_code == 200 and "社群电商管理后台" in admin.text
        login = requests.post(
            f"{base}/api/v1/auth/login/",
            json={"username": "li_xiaoyu", "password": "demo-pass-2026"},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        me = requests.get(f"{base}/api/v1/me/", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.json()["interests"]
        _buy_pay_and_refund_as_the_readme_says(base, member_token=token)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _buy_pay_and_refund_as_the_readme_says(base: str, *, member_token: str) -> None:
    """The README's demo purchase: order, pay at the sandbox, the owner refunds part of it."""
    api = f"{base}/api/v1"
    member = {"Authorization": f"Bearer {member_token}"}
    products = requests.get(f"{api}/communities/caijing-shuyou/products/", headers=member, timeout=10).json()
    sku = next(p for p in products["results"] if p["title"].startswith("《置身事内》"))["skus"][0]["id"]
    order = requests.post(
        f"{api}/orders/",
        json={"community": "caijing-shuyou", "lines": [{"sku": sku, "quantity": 1}]},
        headers={**member, "Idempotency-Key": "readme-1"},
        timeout=10,
    ).json()
    assert order["payment"]["provider"] == "sandbox", order
    paid = requests.post(
        f"{api}/payments/sandbox/pay/", json={"order_id": order["id"]}, headers=member, timeout=10
    )
    assert paid.status_code == 202 and paid.json()["order_status"] == "paid", paid.text

    login = requests.post(
        f"{api}/auth/login/", json={"username": "wu_caijing", "password": "demo-pass-2026"}, timeout=10
    )
    owner = {"Authorization": f"Bearer {login.json()['token']}", "Idempotency-Key": "readme-r1"}
    refund = requests.post(
        f"{api}/owner/orders/{order['id']}/refund/",
        json={"amount": "20.00", "reason": "书角压坏，补偿"},
        headers=owner,
        timeout=10,
    )
    assert refund.status_code == 201, refund.text
    after = requests.get(f"{api}/orders/{order['id']}/", headers=member, timeout=10).json()
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", "20.00")
