"""Large exports run as a background job: progress up to 100%, then a download for its requester only."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from commerce.models import ExportJob
from commerce.reports.roles import finance_user_grant
from commerce.reports.services import _ProgressWriter, export_job_create, export_job_run
from tests.commerce.reports_world import build_ledger, read_csv
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(stripe, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.REPORTS_DIRECT_MAX_ROWS = 0  # every export from the screen becomes a job
    return build_ledger(stripe)


def form(**fields):
    today = timezone.localdate()
    return {
        "report": "order_lines",
        "date_from": (today - timedelta(days=30)).isoformat(),
        "date_to": (today + timedelta(days=1)).isoformat(),
        "fmt": "csv",
        "language": "en",
        "status": "",
        "kind": "",
        "community": "",
        **fields,
    }


def test_a_large_export_queues_a_job_that_finishes_at_100_percent_with_its_file(
    client, ledger, django_capture_on_commit_callbacks
):
    user = finance_user_grant(user=UserFactory())
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:commerce_exportjob_add"), form())

    assert response.status_code == 302
    job = ExportJob.objects.get(requested_by=user)
    assert job.status == ExportJob.Status.DONE and job.progress == 100
    assert job.rows_written == job.rows_total > 0
    listing = client.get(reverse("admin:commerce_exportjob_changelist"))
    assert "100%" in listing.content.decode()
    download = client.get(reverse("admin:commerce_exportjob_download", args=[job.pk]))
    _header, rows, _totals = read_csv(b"".join(download.streaming_content))
    assert download.status_code == 200 and len(rows) == job.rows_written


def test_a_queued_job_shows_its_progress_and_the_list_refreshes_itself(client, ledger):
    user = finance_user_grant(user=UserFactory())
    job = export_job_create(
        user=user,
        report_name="orders",
        fmt="xlsx",
        date_from=timezone.localdate(),
        date_to=timezone.localdate(),
    )
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.RUNNING, progress=42)
    client.force_login(user)

    listing = client.get(reverse("admin:commerce_exportjob_changelist")).content.decode()
    download = client.get(reverse("admin:commerce_exportjob_download", args=[job.pk]))

    assert "42%" in listing and 'http-equiv="refresh"' in listing
    assert download.status_code == 302  # not ready: back to the list with a message


@pytest.mark.django_db(transaction=True)
def test_progress_is_written_on_its_own_connection_while_the_export_reads(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    user = finance_user_grant(user=UserFactory())
    job = ExportJob.objects.create(
        requested_by=user, report="orders", date_from=timezone.localdate(), date_to=timezone.localdate()
    )
    writer = _ProgressWriter(job.pk, total=8)

    writer(2)
    writer(6)
    writer.close()

    job.refresh_from_db()
    assert job.progress == 75 and job.rows_written == 6


def test_only_the_requester_downloads_a_finished_export(client, ledger):
    owner = ledger["b"].owner
    owner.__class__.objects.filter(pk=owner.pk).update(is_staff=True)
    owner.refresh_from_db()
    job = export_job_create(
        user=owner,
        report_name="orders",
        fmt="csv",
        date_from=timezone.localdate() - timedelta(days=30),
        date_to=timezone.localdate(),
    )
    export_job_run(job_id=job.pk)
    url = reverse("admin:commerce_exportjob_download", args=[job.pk])

    client.force_login(ledger["a"].owner.__class__.objects.get(pk=ledger["a"].owner.pk))
    ledger["a"].owner.__class__.objects.filter(pk=ledger["a"].owner.pk).update(is_staff=True)
    assert client.get(url).status_code == 404  # another owner
    client.force_login(finance_user_grant(user=UserFactory()))
    assert client.get(url).status_code == 404  # even finance: the file is the requester's
    client.force_login(owner)
    response = client.get(url)
    _header, rows, _totals = read_csv(b"".join(response.streaming_content))
    assert response.status_code == 200 and {row[2] for row in rows} == {"yi"}


def test_a_job_whose_requester_lost_the_community_fails_instead_of_exporting(ledger):
    owner = ledger["b"].owner
    job = export_job_create(
        user=owner,
        report_name="orders",
        fmt="csv",
        date_from=timezone.localdate(),
        date_to=timezone.localdate(),
    )
    ledger["b"].__class__.objects.filter(pk=ledger["b"].pk).update(owner=UserFactory())
    owner.memberships.update(status="left")

    job = export_job_run(job_id=job.pk)

    assert job.status == ExportJob.Status.FAILED and not job.file


def test_running_a_finished_job_again_writes_nothing_new(ledger):
    job = export_job_create(
        user=ledger["b"].owner,
        report_name="orders",
        fmt="csv",
        date_from=timezone.localdate(),
        date_to=timezone.localdate(),
    )
    first = export_job_run(job_id=job.pk)

    again = export_job_run(job_id=job.pk)

    assert again.file.name == first.file.name and again.status == ExportJob.Status.DONE
