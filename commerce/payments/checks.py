"""System checks of the payment settings for deployment (``manage.py check --deploy``)."""

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
