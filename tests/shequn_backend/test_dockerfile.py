"""The image's own static-files step, then the app under DEBUG=0 as production serves it.

No Docker engine here: the test runs the Dockerfile's ``collectstatic`` RUN line
(with the image's ENV) in a shell, then starts docker-compose's web command
(gunicorn with whitenoise) on a free loopback port and asks for the admin.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from django.db import connection

from tests.shequn_backend.processes import PRODUCTION_ENV, ROOT, clean_env, free_port, wait_for_http

pytestmark = pytest.mark.slow
HOST = PRODUCTION_ENV["ALLOWED_HOSTS"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    return [tuple(line.split(None, 1)) for line in lines if not line.lstrip().startswith("#")]


def image_env() -> dict[str, str]:
    pairs = [shlex.split(args) for op, args in dockerfile_instructions() if op == "ENV"]
    return dict(pair.split("=", 1) for words in pairs for pair in words)


def collectstatic_step() -> str:
    (step,) = [args for op, args in dockerfile_instructions() if op == "RUN" and "collectstatic" in args]
    return step


def web_command(port: int) -> list[str]:
    """docker-compose's web command, bound to loopback with one worker."""
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"]
    command = [f"127.0.0.1:{port}" if part.startswith("0.0.0.0:") else part for part in command]
    command += ["--workers", "1"]  # gunicorn.conf.py sizes it from WEB_WORKERS; the command line wins
    return [sys.executable, "-m", *command]


def run_build_step(static_root: Path) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` is ours
    env = clean_env(**image_env(), STATIC_ROOT=str(static_root), PATH=path)
    return subprocess.run(
        ["sh", "-c", collectstatic_step()], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def production_server(tmp_path, db):
    """The app after the Dockerfile's static step, under the documented production variables."""
    static_root = tmp_path / "static"
    build = run_build_step(static_root)
    assert build.returncode == 0, build.stderr
    settings = connection.settings_dict
    port = free_port()
    env = clean_env(
        **{
            **PRODUCTION_ENV,
            "STATIC_ROOT": str(static_root),
            "CACHE_URL": "locmemcache://",
            "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}",
        }
    )
    server = subprocess.Popen(
        web_command(port), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=server, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.communicate(timeout=30)


def get(url: str) -> requests.Response:
    """A request as the TLS-terminating proxy passes it on."""
    return requests.get(url, headers={"Host": HOST, "X-Forwarded-Proto": "https"}, timeout=10)


def test_the_build_step_runs_with_production_settings_and_keeps_its_key_out_of_the_image():
    step = shlex.split(collectstatic_step())
    assigned = dict(word.split("=", 1) for word in step[: step.index("python")])
    assert assigned["DEBUG"] == "0" and assigned["STATIC_MANIFEST"] == "1"
    assert "SECRET_KEY" in assigned and "SECRET_KEY" not in image_env()


def test_after_the_dockerfile_steps_debug_off_serves_the_admin_login_page_and_its_css(production_server):
    page = get(f"{production_server}/admin/login/")

    assert page.status_code == 200, page.text[:500]
    stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    assert stylesheet, "the admin links its hashed stylesheet from the manifest"
    css = get(production_server + stylesheet.group(1))
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")


def test_after_the_dockerfile_steps_the_vendored_chart_library_is_served(production_server):
    manifest = get(f"{production_server}/static/staticfiles.json")
    hashed = manifest.json()["paths"]["trust/vendor/chart.umd.min.js"]

    chart = get(f"{production_server}/static/{hashed}")

    assert chart.status_code == 200 and b"Chart.js v4" in chart.content[:200]


def test_after_the_dockerfile_steps_the_api_docs_page_loads_only_its_own_hashed_static_files(
    production_server,
):
    page = get(f"{production_server}/api/v1/docs/")

    assert page.status_code == 200, page.text[:500]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert not [url for url in assets if not url.startswith("/static/")], "no CDN: the page must work offline"
    scripts = [url for url in assets if "swagger-ui-bundle." in url]
    assert len(scripts) == 1 and re.search(r"\.[0-9a-f]{12}\.js$", scripts[0]), scripts
    for url in assets:
        asset = get(production_server + url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
