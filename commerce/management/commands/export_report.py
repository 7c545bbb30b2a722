"""``export_report REPORT --format csv|xlsx --from DAY --to DAY [--community SLUG] --output PATH``.

For automation: the shell is trusted with every community unless ``--as-user``
names the account whose permissions the export must respect (finance: all;
owners and operators: their own communities; anyone else: refused).
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from commerce.reports.errors import ReportNotAllowed, ReportRangeInvalid
from commerce.reports.filters import ReportFilters, report_range_check
from commerce.reports.registry import REPORTS
from commerce.reports.selectors import report_scope_for_user
from commerce.reports.services import FORMATS, report_export
from members.models import Community, User


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date: use YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Export a finance report as CSV or XLSX (dates are Asia/Shanghai calendar days, both inclusive)."

    def add_arguments(self, parser):
        parser.add_argument("report", choices=sorted(REPORTS))
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="csv")
        parser.add_argument("--from", dest="date_from", required=True, type=_day)
        parser.add_argument("--to", dest="date_to", required=True, type=_day)
        parser.add_argument("--community", help="Community slug (default: every community in scope).")
        parser.add_argument("--status", default="", help="Only rows with this status (the report's codes).")
        parser.add_argument("--kind", default="", help="Only orders of this kind: goods, event or entry.")
        parser.add_argument("--lang", default="zh-hans", choices=["zh-hans", "en"], help="Column language.")
        parser.add_argument("--as-user", dest="as_user", help="Export with this user's permissions.")
        parser.add_argument("--output", required=True, help="File to write ('-' for standard output).")

    def handle(
        self, *args, report, fmt, date_from, date_to, community, status, kind, lang, as_user, output, **kw
    ):
        try:
            report_range_check(date_from=date_from, date_to=date_to)
        except ReportRangeInvalid as exc:
            raise CommandError(str(exc.message)) from exc
        if date_to < date_from:
            raise CommandError("--to is before --from.")
        community_obj = None
        if community:
            community_obj = Community.objects.filter(slug=community).first()
            if community_obj is None:
                raise CommandError(f"No community with slug {community!r}.")
        scope = None if community_obj is None else frozenset({community_obj.pk})
        if as_user:
            user = User.objects.filter(username=as_user).first()
            if user is None:
                raise CommandError(f"No user {as_user!r}.")
            try:
                scope = report_scope_for_user(user=user, community=community_obj)
            except ReportNotAllowed as exc:
                raise CommandError(str(exc.message)) from exc
        filters = ReportFilters(
            date_from=date_from, date_to=date_to, community_ids=scope, status=status, kind=kind
        )
        if output == "-":
            result = report_export(
                report_name=report, filters=filters, fmt=fmt, stream=self.stdout._out.buffer, language=lang
            )
        else:
            with open(output, "wb") as stream:
                result = report_export(
                    report_name=report, filters=filters, fmt=fmt, stream=stream, language=lang
                )
        self.stderr.write(f"{report}: {result.rows} rows written to {output}")
