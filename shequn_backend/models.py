"""Project-wide records that belong to no single app: the audit trail."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    """Who changed what, before and after, and when: one row per state change a service made.

    Written only by ``shequn_backend.audit``; never edited. ``actor`` is the
    signed-in user who acted; system actors (jobs, payment notifications)
    leave it empty and name themselves in ``actor_label``.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(_("acted as"), max_length=64)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    target_type = models.CharField(_("object type"), max_length=64)
    target_id = models.CharField(_("object id"), max_length=64)
    community = models.ForeignKey(
        "members.Community",
        on_delete=models.DO_NOTHING,
        db_constraint=False,  # the trail outlives what it describes
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("community"),
    )
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            models.Index(fields=["community", "-created_at"], name="audit_community_time"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_type}#{self.target_id}"
