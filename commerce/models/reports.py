"""Finance exports that run in the background: what was asked, how far it got, the file it wrote."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import Community


class ExportJob(models.Model):
    """One requested export. The worker writes ``file`` to default storage and counts ``progress`` up to 100.

    The filters are stored as asked; the communities the requester may see are
    worked out again when the job runs, so a revoked owner exports nothing.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Ready to download")
        FAILED = "failed", _("Export failed")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="export_jobs",
        verbose_name=_("requested by"),
    )
    report = models.CharField(_("report"), max_length=20)
    format = models.CharField(_("format"), max_length=4, choices=Format.choices, default=Format.CSV)
    language = models.CharField(_("language"), max_length=10, default="zh-hans")
    date_from = models.DateField(_("from"))
    date_to = models.DateField(_("to"))
    community = models.ForeignKey(
        Community,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="export_jobs",
        verbose_name=_("community"),
    )
    status_filter = models.CharField(_("status filter"), max_length=20, blank=True)
    kind_filter = models.CharField(_("kind filter"), max_length=8, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    rows_total = models.PositiveIntegerField(_("rows expected"), default=0)
    rows_written = models.PositiveIntegerField(_("rows written"), default=0)
    file = models.FileField(_("file"), upload_to="exports/%Y/%m/", blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("export_all_communities", _("Can read and export every community's money data (finance)")),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="export_job_progress_lte_100"),
        ]

    def __str__(self) -> str:
        return f"{self.report} {self.date_from}..{self.date_to} ({self.get_status_display()})"
