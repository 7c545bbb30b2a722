"""Reads on members' data, each named for whom it is scoped to."""

from members.models import User


def user_get_with_profile(*, user_id: int) -> User:
    return User.objects.prefetch_related("interests").get(pk=user_id)
