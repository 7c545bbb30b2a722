"""System checks of commerce's settings (``manage.py check``, run on every deploy)."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def provider_time_fits_the_worker(app_configs=None, **kwargs) -> list[Error]:
    """Waiting on payment providers must end well before gunicorn kills the worker."""
    budget, worker = settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS, settings.WEB_WORKER_TIMEOUT_SECONDS
    if 0 < budget <= worker / 2:
        return []
    return [
        Error(
            f"PAYMENT_PROVIDER_TIMEOUT_SECONDS ({budget}) must be above 0 and at most half of "
            f"WEB_WORKER_TIMEOUT_SECONDS ({worker}).",
            hint="A request that outlives the worker's timeout answers an HTML 500 and leaves "
            "a payment half recorded.",
            id="commerce.E001",
        )
    ]
