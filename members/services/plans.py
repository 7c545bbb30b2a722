"""Entry plans: what joining a paid community costs. Every change is checked and audited.

The currency must be one the project can charge and settle (``settings.SUPPORTED_CURRENCIES``):
a plan priced in anything else would take members' money and never admit them.
"""

import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from members.errors import InvalidSettings
from members.models import Community, EntryPlan
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot, audit_update

PLAN_FIELDS = ("name", "price", "currency", "period_days", "trial_days", "refund_window_days", "is_active")
PLAN_DEFAULTS = {
    "currency": "CNY",
    "period_days": None,
    "trial_days": 0,
    "refund_window_days": 3,
    "is_active": True,
}
CURRENCY_SHAPE = re.compile(r"^[A-Z]{3}$")  # ISO 4217 alphabetic codes; the database checks the same


def currency_check(currency: str) -> None:
    if not CURRENCY_SHAPE.match(currency or "") or currency not in settings.SUPPORTED_CURRENCIES:
        supported = ", ".join(settings.SUPPORTED_CURRENCIES)
        raise InvalidSettings(
            fields={"currency": [_("Choose a supported currency code: %(codes)s.") % {"codes": supported}]}
        )


def entry_plan_check(*, community_id: int | None, values: dict, plan: EntryPlan | None = None) -> None:
    """Refuse a plan that could not be charged or honoured; ``values`` are its fields after the change."""
    fields: dict[str, list[str]] = {}
    try:
        currency_check(values["currency"])
    except InvalidSettings as exc:
        fields.update(exc.fields)
    try:
        if Decimal(values["price"]) < 0:
            fields["price"] = [_("Enter a price of zero or more.")]
    except (InvalidOperation, TypeError):
        fields["price"] = [_("Enter a price of zero or more.")]
    if values.get("period_days") is not None and values["period_days"] <= 0:
        fields["period_days"] = [_("Enter a period of at least one day, or leave it empty for lifetime.")]
    for name in ("trial_days", "refund_window_days"):
        if values.get(name) is not None and values[name] < 0:
            fields[name] = [_("Enter zero or more days.")]
    if community_id is not None:
        same_name = EntryPlan.objects.filter(community_id=community_id, name=values["name"])
        if plan is not None and plan.pk is not None:
            same_name = same_name.exclude(pk=plan.pk)
        if same_name.exists():
            fields["name"] = [_("This community already has a plan with this name.")]
    if fields:
        raise InvalidSettings(fields=fields)


@transaction.atomic
def entry_plan_create(*, actor: Actor, community: Community, name: str, price, **fields) -> EntryPlan:
    values = {**PLAN_DEFAULTS, **fields, "name": name, "price": price}
    entry_plan_check(community_id=community.pk, values=values)
    plan = EntryPlan.objects.create(community=community, **values)
    audit_record(
        actor=actor,
        action="entry_plan.created",
        target=plan,
        community_id=community.pk,
        changes=audit_diff({}, audit_snapshot(plan, PLAN_FIELDS)),
    )
    return plan


@transaction.atomic
def entry_plan_update(*, actor: Actor, plan: EntryPlan, **fields) -> EntryPlan:
    """Change a plan's price, currency, period, trial, refund window or whether it is offered.

    Orders already created keep the price they were created with.
    """
    unknown = set(fields) - set(PLAN_FIELDS)
    if unknown:
        raise TypeError(f"unexpected plan fields {sorted(unknown)}")
    plan = EntryPlan.objects.select_for_update().select_related("community").get(pk=plan.pk)
    entry_plan_check(
        community_id=plan.community_id, values={**audit_snapshot(plan, PLAN_FIELDS), **fields}, plan=plan
    )
    audit_update(
        actor=actor,
        instance=plan,
        values=fields,
        action="entry_plan.updated",
        community_id=plan.community_id,
        audited=PLAN_FIELDS,
    )
    return plan


def community_set_plans(*, community: Community, plans: list[dict], actor: Actor) -> None:
    """Upsert plans by name; plans not named any more are deactivated (orders may point at them).

    Fields a plan leave out take their defaults, except the currency of an
    existing plan, which stays what it was.
    """
    names = []
    for spec in plans:
        names.append(spec["name"])
        existing = EntryPlan.objects.filter(community=community, name=spec["name"]).first()
        defaults = (
            PLAN_DEFAULTS if existing is None else {k: v for k, v in PLAN_DEFAULTS.items() if k != "currency"}
        )
        given = {key: spec[key] for key in PLAN_FIELDS if key in spec and key != "name"}
        values = {**defaults, **given, "is_active": True}
        if existing is None:
            entry_plan_create(actor=actor, community=community, name=spec["name"], **values)
        else:
            entry_plan_update(actor=actor, plan=existing, **values)
    for plan in EntryPlan.objects.filter(community=community, is_active=True).exclude(name__in=names):
        entry_plan_update(actor=actor, plan=plan, is_active=False)
