"""The README's run mode: SQLite, eager tasks, demo data, admin and API served."""

import subprocess
import sys

import pytest
import requests

from tests.shequn_backend.processes import ROOT, clean_env, free_port, manage, wait_for_http


@pytest.mark.slow
def test_embedded_default_migrates_seeds_and_serves(tmp_path):
    env = clean_env(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}")
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
    finally:
        server.terminate()
        server.wait(timeout=30)
