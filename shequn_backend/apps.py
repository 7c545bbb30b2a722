from django.apps import AppConfig


class ShequnBackendConfig(AppConfig):
    name = "shequn_backend"
    verbose_name = "shequn-backend"
