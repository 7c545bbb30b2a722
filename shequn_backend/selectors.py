"""Project-wide reads: the audit trail of given objects."""

from django.db.models import Model, Q, QuerySet

from shequn_backend.models import AuditEntry


def audit_history(*, targets: list[Model], limit: int = 50) -> QuerySet[AuditEntry]:
    """The newest audit rows about any of ``targets`` (e.g. an order, its payments and refunds)."""
    by_type: dict[str, list[str]] = {}
    for target in targets:
        by_type.setdefault(target._meta.label_lower, []).append(str(target.pk))
    if not by_type:
        return AuditEntry.objects.none()
    condition = Q()
    for label, ids in by_type.items():
        condition |= Q(target_type=label, target_id__in=ids)
    return AuditEntry.objects.filter(condition).select_related("actor").order_by("-created_at", "-id")[:limit]
