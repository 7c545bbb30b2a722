from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShequnBackendConfig(AppConfig):
    name = "shequn_backend"
    verbose_name = _("Audit")  # the project's only models are the audit trail's
