"""Writes on users: registration, login, profile."""

import secrets

from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from members import wechat
from members.errors import InvalidCredentials, UsernameTaken
from members.events import user_interests_changed
from members.models import User, UserInterest
from shequn_backend.events import send_on_commit

MAX_INTERESTS = 30


def normalise_tags(tags: list[str], *, limit: int = MAX_INTERESTS) -> list[str]:
    """Trim, fold white space and drop duplicates, keeping the first spelling's order."""
    seen: dict[str, str] = {}
    for tag in tags:
        clean = " ".join(tag.split())
        if clean and clean.casefold() not in seen:
            seen[clean.casefold()] = clean
    return list(seen.values())[:limit]


def user_token(*, user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def user_register(
    *, username: str, password: str, nickname: str = "", interests: list[str] | None = None
) -> User:
    """Create a user; a taken username (case-insensitively) is refused, even under a race."""
    if User.objects.filter(username__iexact=username).exists():
        raise UsernameTaken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password, nickname=nickname)
            if interests:
                user_set_interests(user=user, interests=interests)
    except IntegrityError as exc:
        raise UsernameTaken() from exc
    return user


def user_authenticate(*, username: str, password: str) -> User:
    user = authenticate(username=username, password=password)
    if user is None:
        raise InvalidCredentials()
    return user


@transaction.atomic
def user_set_interests(*, user: User, interests: list[str]) -> list[str]:
    tags = normalise_tags(interests)
    UserInterest.objects.filter(user=user).exclude(tag__in=tags).delete()
    existing = set(UserInterest.objects.filter(user=user).values_list("tag", flat=True))
    UserInterest.objects.bulk_create([UserInterest(user=user, tag=t) for t in tags if t not in existing])
    send_on_commit(user_interests_changed, sender=User, user_id=user.pk)
    return tags


@transaction.atomic
def user_update_profile(
    *, user: User, nickname: str | None = None, interests: list[str] | None = None
) -> User:
    if nickname is not None:
        user.nickname = nickname
        user.save(update_fields=["nickname"])
    if interests is not None:
        user_set_interests(user=user, interests=interests)
    return user


def user_login_wechat(*, code: str) -> User:
    """Exchange a mini-program login code for our user, creating one on first login."""
    session = wechat.code_to_session(code)
    user, _created = User.objects.get_or_create(
        wechat_openid=session.openid,
        defaults={"username": f"wx_{secrets.token_hex(8)}", "password": "!"},  # "!" = unusable
    )
    return user
