"""docker-compose.yml cannot run here (no Docker engine): check its shape and that it names real code."""

import importlib
import shlex

import yaml

from tests.shequn_backend.processes import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def command_of(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    return command if isinstance(command, list) else shlex.split(command)


def test_the_production_services_are_all_there_with_health_checks():
    for name in ["postgres", "redis", "web", "worker", "beat"]:
        assert name in SERVICES, name
        assert SERVICES[name]["healthcheck"]["test"], name


def test_web_runs_gunicorn_on_our_wsgi_application():
    command = command_of("web")
    assert command[0] == "gunicorn"
    module_name, attribute = command[1].split(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute))


def test_worker_and_beat_run_our_celery_app():
    for name, role in [("worker", "worker"), ("beat", "beat")]:
        command = command_of(name)
        assert command[:3] == ["celery", "-A", "shequn_backend"] and command[3] == role
    assert importlib.import_module("shequn_backend").celery_app.main == "shequn_backend"


def test_app_services_get_production_settings_from_the_environment():
    for name in ["web", "worker", "beat", "migrate"]:
        env = SERVICES[name]["environment"]
        assert env["DEBUG"] == "0"
        for key in [
            "SECRET_KEY",
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
        ]:
            assert key in env, (name, key)
        assert env["DATABASE_URL"].startswith("postgres://")
    assert "manage.py" in command_of("migrate") and "migrate" in command_of("migrate")
    assert (ROOT / "Dockerfile").exists()


def test_the_database_connections_of_the_services_fit_postgresql_default_budget():
    """Each web thread and Celery process keeps a connection; PostgreSQL takes 100 by default."""
    web = SERVICES["web"]["environment"]

    def default(value: str) -> int:  # "${NAME:-4}"
        return int(value.rsplit(":-", 1)[1].rstrip("}"))

    worker = command_of("worker")
    concurrency = int(worker[worker.index("--concurrency") + 1])
    assert default(web["WEB_WORKERS"]) * default(web["WEB_THREADS"]) + concurrency + 1 < 100
