"""Run exports: straight to a stream (command, small admin downloads) or as a background job with progress.

Callers decide the scope first (``selectors.report_scope_for_user``); these
functions trust the ``ReportFilters`` they are given, except the job runner,
which works the scope out again from the requester at run time.
"""

import logging
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date
from typing import BinaryIO

from django.core.files import File
from django.db import connection, connections, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from commerce.models import ExportJob
from commerce.reports.errors import ReportNotAllowed
from commerce.reports.filters import ReportFilters, report_range_check
from commerce.reports.registry import report_get
from commerce.reports.selectors import report_scope_for_user
from commerce.reports.writers import ExportResult, write_csv, write_csv_copy, write_xlsx
from members.models import Community, User
from shequn_backend.calendar import business_zone
from shequn_backend.db import reading_from_replica, reporting_alias
from shequn_backend.events import enqueue_on_commit

logger = logging.getLogger(__name__)
FORMATS = ("csv", "xlsx")


@contextmanager
def report_snapshot(*, reading: bool = True):
    """One read-only snapshot for the count, the rows and the totals (PostgreSQL: REPEATABLE READ).

    Inside a transaction the server-side cursor streams; outside one Django
    would declare it WITH HOLD and PostgreSQL would materialise every row first.
    On the reporting database (the replica when there is one) unless ``reading`` is False.
    """
    alias = reporting_alias() if reading else "default"
    reader = connections[alias]
    outermost = not reader.in_atomic_block
    with transaction.atomic(using=alias):
        if outermost and reader.vendor == "postgresql":
            with reader.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def filters_summary(*, report_name: str, filters: ReportFilters) -> list[tuple[str, str]]:
    if filters.community_ids is None:
        communities = _("All communities")
    else:
        names = Community.objects.filter(pk__in=filters.community_ids).order_by("name")
        communities = ", ".join(names.values_list("name", flat=True))
    return [
        (_("Report"), report_name),
        (_("From"), filters.date_from.isoformat()),
        (_("To"), filters.date_to.isoformat()),
        (_("Time zone"), business_zone().key),
        (_("Communities"), communities),
        (_("Status"), filters.status or _("All")),
        (_("Kind"), filters.kind or _("All")),
    ]


def report_export(
    *,
    report_name: str,
    filters: ReportFilters,
    fmt: str,
    stream: BinaryIO,
    language: str = "zh-hans",
    on_progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write one report to ``stream`` in ``fmt``; returns the row count and the totals written.

    The caller has already limited ``filters.community_ids`` to what its user may see.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    report = report_get(name=report_name)
    with reading_from_replica() as alias, translation.override(language), report_snapshot():
        if fmt == "csv" and report.copy_query is not None and connections[alias].vendor == "postgresql":
            queryset = report.copy_query(filters)
            return write_csv_copy(report=report, queryset=queryset, stream=stream, on_progress=on_progress)
        rows = report.rows(filters)
        if fmt == "csv":
            return write_csv(report=report, rows=rows, stream=stream, on_progress=on_progress)
        summary = filters_summary(report_name=str(report.title), filters=filters)
        return write_xlsx(
            report=report, rows=rows, stream=stream, filters_summary=summary, on_progress=on_progress
        )


def report_count(*, report_name: str, filters: ReportFilters) -> int:
    with reading_from_replica():
        return report_get(name=report_name).count(filters)


def export_filename(*, report_name: str, date_from: date, date_to: date, fmt: str) -> str:
    return f"{report_name}_{date_from:%Y%m%d}-{date_to:%Y%m%d}.{fmt}"


def export_job_create(
    *,
    user: User,
    report_name: str,
    fmt: str,
    date_from: date,
    date_to: date,
    community: Community | None = None,
    status: str = "",
    kind: str = "",
    language: str = "zh-hans",
) -> ExportJob:
    """Queue a background export for ``user`` (who must be allowed the scope); the worker starts on commit."""
    from commerce.reports.tasks import export_job_run_task

    report_get(name=report_name)
    report_scope_for_user(user=user, community=community)
    report_range_check(date_from=date_from, date_to=date_to)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    with transaction.atomic():
        job = ExportJob.objects.create(
            requested_by=user,
            report=report_name,
            format=fmt,
            language=language,
            date_from=date_from,
            date_to=date_to,
            community=community,
            status_filter=status,
            kind_filter=kind,
        )
        enqueue_on_commit(export_job_run_task, job.pk)  # broker down: logged, the job stays queued
    return job


class _ProgressWriter:
    """Writes progress on a connection of its own: the export reads inside one long transaction."""

    def __init__(self, job_id: int, total: int):
        self.job_id, self.total, self.last = job_id, max(total, 1), -1
        self.connection = connections.create_connection("default") if connection.vendor != "sqlite" else None

    def __call__(self, rows: int) -> None:
        percent = min(99, rows * 100 // self.total)
        if percent == self.last:
            return
        self.last = percent
        sql = "UPDATE commerce_exportjob SET progress = %s, rows_written = %s WHERE id = %s"
        if self.connection is None:  # SQLite has one writer; the embedded mode runs jobs eagerly anyway
            return
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [percent, rows, self.job_id])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def export_job_run(*, job_id: int) -> ExportJob:
    """Run a queued export: write the file to default storage, counting progress to 100. Idempotent.

    A finished job is left alone; a job found ``running`` (a worker died) is
    started again from the beginning, overwriting nothing that was saved.
    """
    job = ExportJob.objects.select_related("requested_by", "community").get(pk=job_id)
    if job.status == ExportJob.Status.DONE:
        return job
    try:
        scope = report_scope_for_user(user=job.requested_by, community=job.community)
    except ReportNotAllowed as exc:
        return _export_job_fail(job, str(exc.message))
    filters = ReportFilters(
        date_from=job.date_from,
        date_to=job.date_to,
        community_ids=scope,
        status=job.status_filter,
        kind=job.kind_filter,
    )
    total = report_count(report_name=job.report, filters=filters)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now(), rows_total=total, progress=0, error=""
    )
    progress = _ProgressWriter(job.pk, total)
    try:
        with tempfile.TemporaryFile() as handle:
            result = report_export(
                report_name=job.report,
                filters=filters,
                fmt=job.format,
                stream=handle,
                language=job.language,
                on_progress=progress,
            )
            handle.seek(0)
            name = export_filename(
                report_name=job.report, date_from=job.date_from, date_to=job.date_to, fmt=job.format
            )
            job.refresh_from_db()
            job.file.save(name, File(handle), save=False)
    except Exception as exc:
        logger.exception("Export job %s failed", job.pk)
        _export_job_fail(job, str(exc)[:500])
        raise
    finally:
        progress.close()
    job.status, job.progress, job.rows_written = ExportJob.Status.DONE, 100, result.rows
    job.finished_at = timezone.now()
    job.save(update_fields=["file", "status", "progress", "rows_written", "finished_at"])
    return job


def _export_job_fail(job: ExportJob, error: str) -> ExportJob:
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.FAILED, error=error, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job
