"""The Celery application: broker from settings, tasks discovered per app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")

app = Celery("shequn_backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
