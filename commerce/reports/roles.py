"""The finance role (财务): staff who read every community's money data and export it, and nothing else.

The group and its permissions are (re)made after every ``migrate`` by a
``post_migrate`` receiver: permissions only exist once ``post_migrate`` has
run, so a data migration could not grant them.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from members.models import User

FINANCE_GROUP = "财务"
FINANCE_PERMISSION = "commerce.export_all_communities"
FINANCE_CODENAMES = (
    "export_all_communities",
    "view_exportjob",
    "add_exportjob",
    "view_order",
    "view_orderline",
    "view_payment",
    "view_refund",
    "view_webhookevent",
    "view_commission",
    "view_commissionentry",
    "view_withdrawal",
    "review_withdrawal",  # approve or reject withdrawals (提现审核)
)


def finance_group_ensure() -> Group:
    """Create the 财务 group with exactly its permissions. Idempotent."""
    group, _created = Group.objects.get_or_create(name=FINANCE_GROUP)
    permissions = Permission.objects.filter(
        content_type__app_label="commerce", codename__in=FINANCE_CODENAMES
    )
    group.permissions.add(*permissions)
    return group


def finance_group_post_migrate(sender, using: str = "default", **kwargs) -> None:
    """``post_migrate`` receiver for the commerce app (connected in ``CommerceConfig.ready``)."""
    if not Permission.objects.using(using).filter(codename="export_all_communities").exists():
        return  # commerce not migrated this far (e.g. migrating backwards)
    finance_group_ensure()


def finance_user_grant(*, user: User) -> User:
    """Make ``user`` finance staff: in the 财务 group and allowed to sign in to the admin."""
    with transaction.atomic():
        user.groups.add(finance_group_ensure())
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    # Django caches permissions on the instance: drop them so the new group counts at once.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
    return user


def user_is_finance(*, user) -> bool:
    """Finance staff (or a superuser): active admin users holding the finance permission."""
    return bool(
        user.is_authenticated and user.is_active and user.is_staff and user.has_perm(FINANCE_PERMISSION)
    )
