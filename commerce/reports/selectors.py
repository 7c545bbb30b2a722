"""Who may export what: the communities a user's reports cover, and the export jobs they may see."""

from django.db.models import QuerySet

from commerce.models import ExportJob
from commerce.reports.errors import ReportNotAllowed
from commerce.reports.roles import user_is_finance
from members.models import Community
from members.selectors import community_ids_managed_by


def report_scope_for_user(*, user, community: Community | None = None) -> frozenset[int] | None:
    """The community ids ``user``'s export may cover; None means every community.

    Finance staff and superusers: every community (or the one asked for).
    Owners and operators: the communities they manage, and only those.
    Anyone else, or a community outside their own: ``ReportNotAllowed``.
    """
    if user.is_superuser or user_is_finance(user=user):
        return None if community is None else frozenset({community.pk})
    managed = community_ids_managed_by(user=user)
    if not managed or (community is not None and community.pk not in managed):
        raise ReportNotAllowed()
    return frozenset({community.pk}) if community is not None else frozenset(managed)


def user_may_export(*, user) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or user_is_finance(user=user) or bool(community_ids_managed_by(user=user))


def community_list_for_reports(*, user) -> QuerySet[Community]:
    """The communities offered in the export screen's community choice."""
    scope = report_scope_for_user(user=user)
    communities = Community.objects.order_by("name")
    return communities if scope is None else communities.filter(pk__in=scope)


def export_job_list_for_user(*, user) -> QuerySet[ExportJob]:
    """A user's own export jobs (superusers see everyone's)."""
    jobs = ExportJob.objects.select_related("community", "requested_by")
    return jobs if user.is_superuser else jobs.filter(requested_by=user)


def export_job_get_for_user(*, user, job_id: int) -> ExportJob:
    """The job if ``user`` requested it (or is a superuser); ``ExportJob.DoesNotExist`` otherwise."""
    return export_job_list_for_user(user=user).get(pk=job_id)
