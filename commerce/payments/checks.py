"""System checks of the payment settings (``manage.py check``; the sandbox one with ``--deploy``)."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def sandbox_payments_off_in_production(app_configs, **kwargs) -> list[Error]:
    """The sandbox provider confirms payments nobody made: never with ``DEBUG=0``."""
    if settings.PAYMENT_SANDBOX_ENABLED and not settings.DEBUG:
        return [
            Error(
                "PAYMENT_SANDBOX_ENABLED is on with DEBUG=0: anyone could mark orders paid without paying.",
                hint="Unset PAYMENT_SANDBOX_ENABLED (or set it to 0) in production.",
                id="commerce.E002",
            )
        ]
    return []


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
