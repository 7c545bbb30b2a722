from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CommerceConfig(AppConfig):
    name = "commerce"
    verbose_name = _("Commerce")

    def ready(self):
        from commerce.reports import tasks  # noqa: F401 - registers the export task with Celery
        from commerce.reports.roles import finance_group_post_migrate

        post_migrate.connect(finance_group_post_migrate, sender=self, dispatch_uid="commerce_finance_group")
        from commerce import receivers  # noqa: F401 - connects the coupon receivers
        from commerce.payments import checks  # noqa: F401 - registers the payment settings checks
