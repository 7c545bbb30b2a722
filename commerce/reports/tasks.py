"""The background export task: a thin wrapper, ids in, safe to run twice."""

from celery import shared_task

from commerce.reports.services import export_job_run


@shared_task(name="commerce.export_job_run", acks_late=True)
def export_job_run_task(job_id: int) -> str:
    """Write the job's file; a finished job is not written again."""
    return export_job_run(job_id=job_id).status
