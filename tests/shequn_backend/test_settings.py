"""Production mode refuses insecure secrets and passes Django's deploy checklist."""

import pytest

from tests.shequn_backend.processes import PRODUCTION_ENV, clean_env, manage


@pytest.mark.parametrize(
    "secret",
    [None, "django-insecure-embedded-default-do-not-use-in-production", "short"],
    ids=["missing", "default", "too-short"],
)
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    env = clean_env(**{k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"})
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY is missing or insecure" in result.stderr


def test_check_deploy_is_clean_under_the_documented_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=clean_env(**PRODUCTION_ENV))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_debug_mode_runs_without_any_secret():
    result = manage("check", env=clean_env(DEBUG="1"))
    assert result.returncode == 0, result.stderr


def test_defaults_are_china_time_and_simplified_chinese(settings):
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.LANGUAGE_CODE == "zh-hans"
    assert settings.USE_TZ


def test_database_connections_persist_unless_a_maximum_age_is_set():
    """A connection recycled after a quiet minute made a flash sale start on cold PostgreSQL backends."""
    code = "from django.conf import settings; print(repr(settings.DATABASES['default']['CONN_MAX_AGE']))"
    assert manage("shell", "--no-imports", "-c", code, env=clean_env(DEBUG="1")).stdout.split() == ["None"]
    assert manage(
        "shell", "--no-imports", "-c", code, env=clean_env(DEBUG="1", CONN_MAX_AGE="0")
    ).stdout.split() == ["0"]
