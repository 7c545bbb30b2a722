"""gunicorn's settings (read from the working directory): the worker timeout the Django settings know.

``WEB_WORKER_TIMEOUT_SECONDS`` is also what ``manage.py check`` (commerce.E001) compares
``PAYMENT_PROVIDER_TIMEOUT_SECONDS`` with, so the two cannot drift apart.
"""

import os

timeout = int(os.environ.get("WEB_WORKER_TIMEOUT_SECONDS", "30"))
