"""Writes on users: registration, login, profile, API tokens and passwords."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken

from members import wechat
from members.errors import (
    AccountHasOtherWechat,
    InvalidCredentials,
    UsernameTaken,
    WechatAlreadyBound,
    WrongPassword,
)
from members.events import user_interests_changed
from members.models import User, UserInterest
from shequn_backend.audit import Actor, audit_record
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


@transaction.atomic
def user_token(*, user: User) -> str:
    """A new API token for one device (login, register, password change); it expires.

    Only a hash is stored. The user's expired tokens go, and the oldest beyond
    ``API_TOKENS_PER_USER`` too, so a login loop cannot pile up live tokens.
    """
    AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
    _instance, token = AuthToken.objects.create(user=user, expiry=timedelta(days=settings.API_TOKEN_TTL_DAYS))
    newest = AuthToken.objects.filter(user=user).order_by("-created", "-pk")
    surplus = list(newest.values_list("pk", flat=True)[settings.API_TOKENS_PER_USER :])
    if surplus:
        AuthToken.objects.filter(pk__in=surplus).delete()
    return token


def user_token_revoke(*, token: AuthToken) -> None:
    """Log one device out: its token stops working at once."""
    AuthToken.objects.filter(pk=token.pk).delete()


@transaction.atomic
def user_tokens_revoke_all(*, user: User, actor: Actor) -> int:
    """Log every device out."""
    revoked, _ = AuthToken.objects.filter(user=user).delete()
    audit_record(actor=actor, action="user.tokens_revoked", target=user, changes={"tokens": [revoked, 0]})
    return revoked


@transaction.atomic
def user_password_change(
    *, user: User, new_password: str | None, actor: Actor, old_password: str | None = None
) -> None:
    """Set a new password (``None`` disables password login) and revoke all of the user's tokens.

    With ``old_password`` (the user changing their own), it must match. The
    admin's password form and the API both come here, so no old token outlives
    a password change.
    """
    if old_password is not None and not user.check_password(old_password):
        raise WrongPassword()
    if new_password is None:
        user.set_unusable_password()
    else:
        user.set_password(new_password)
    user.save(update_fields=["password"])
    revoked, _ = AuthToken.objects.filter(user=user).delete()
    audit_record(
        actor=actor,
        action="user.password_changed",
        target=user,
        changes={"password_usable": new_password is not None, "tokens_revoked": revoked},
    )


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
def user_set_interests(*, user: User, interests: list[str], actor: Actor | None = None) -> list[str]:
    """Replace the user's declared interests (the actor defaults to the user); audited, announced."""
    tags = normalise_tags(interests)
    existing = list(UserInterest.objects.filter(user=user).order_by("pk").values_list("tag", flat=True))
    if sorted(existing) == sorted(tags):
        return tags
    UserInterest.objects.filter(user=user).exclude(tag__in=tags).delete()
    UserInterest.objects.bulk_create([UserInterest(user=user, tag=t) for t in tags if t not in existing])
    changes = {"interests": [existing, tags]}
    audit_record(actor=actor or user, action="user.interests_changed", target=user, changes=changes)
    send_on_commit(user_interests_changed, sender=User, user_id=user.pk)
    return tags


@transaction.atomic
def user_update_profile(
    *, user: User, nickname: str | None = None, interests: list[str] | None = None, actor: Actor | None = None
) -> User:
    """Change the caller's own profile (the actor defaults to the user)."""
    if nickname is not None and nickname != user.nickname:
        audit_record(
            actor=actor or user,
            action="user.nickname_changed",
            target=user,
            changes={"nickname": [user.nickname, nickname]},
        )
        user.nickname = nickname
        user.save(update_fields=["nickname"])
    if interests is not None:
        user_set_interests(user=user, interests=interests, actor=actor)
    return user


def user_login_wechat(*, code: str) -> User:
    """Exchange a mini-program login code for our user, creating one on first login.

    The account is found by openid first, then by unionid (the same person,
    known from another of the platform's apps, with no openid of ours yet:
    the openid is linked to it). WeChat's unionid is kept when it gives one.
    Two first logins of one person at once make one account.
    """
    session = wechat.code_to_session(code)
    try:
        with transaction.atomic():
            return _wechat_user(session)
    except IntegrityError:  # the same person's concurrent first login created the row: find it
        with transaction.atomic():
            return _wechat_user(session)


def _wechat_user(session: wechat.WechatSession) -> User:
    user = User.objects.select_for_update().filter(wechat_openid=session.openid).first()
    if user is None and session.unionid:
        user = (
            User.objects.select_for_update()
            .filter(wechat_unionid=session.unionid, wechat_openid__isnull=True)
            .first()
        )
    if user is None:
        unionid = session.unionid
        if unionid and User.objects.filter(wechat_unionid=unionid).exists():
            unionid = None  # held by an account bound to another openid: leave it there
        user = User.objects.create(
            username=f"wx_{secrets.token_hex(8)}",
            password="!",  # "!" = unusable
            wechat_openid=session.openid,
            wechat_unionid=unionid,
        )
        audit_record(
            actor=user, action="user.wechat_registered", target=user, changes={"wechat": [None, "bound"]}
        )
        return user
    _wechat_link(user=user, session=session, actor=user)
    return user


def _wechat_link(*, user: User, session: wechat.WechatSession, actor: Actor) -> None:
    """Set the user's openid and (if free) unionid from ``session``; audited when anything changes."""
    changes = {}
    if user.wechat_openid != session.openid:
        user.wechat_openid = session.openid
        changes["wechat_openid"] = [None, "bound"]
    if (
        session.unionid
        and not user.wechat_unionid
        and not User.objects.filter(wechat_unionid=session.unionid).exclude(pk=user.pk).exists()
    ):
        user.wechat_unionid = session.unionid
        changes["wechat_unionid"] = [None, "bound"]
    if changes:
        user.save(update_fields=["wechat_openid", "wechat_unionid"])
        audit_record(actor=actor, action="user.wechat_bound", target=user, changes=changes)


def user_bind_wechat(*, user: User, code: str, actor: Actor) -> User:
    """Bind ``user``'s account (made with a password) to the WeChat user of a mini-program login code.

    One account per openid: a WeChat already bound to another account (or
    whose unionid is another account's), or an account bound to another
    WeChat, is ``409 wechat_already_bound``. Binding the same WeChat again is
    a no-op. Race-safe: the openid and unionid columns are unique.
    """
    session = wechat.code_to_session(code)  # outside any transaction: a network call
    return user_bind_wechat_session(user=user, session=session, actor=actor)


def user_bind_wechat_session(*, user: User, session: wechat.WechatSession, actor: Actor) -> User:
    """Bind ``user`` to the WeChat identity of ``session`` (``user_bind_wechat``'s rules and answers).

    Used directly for an identity known without a login code: the demo's sandbox WeChat.
    """
    try:
        with transaction.atomic():
            user = User.objects.select_for_update().get(pk=user.pk)
            if user.wechat_openid and user.wechat_openid != session.openid:
                raise AccountHasOtherWechat()
            others = User.objects.exclude(pk=user.pk)
            if others.filter(wechat_openid=session.openid).exists():
                raise WechatAlreadyBound()
            if session.unionid and others.filter(wechat_unionid=session.unionid).exists():
                raise WechatAlreadyBound()
            _wechat_link(user=user, session=session, actor=actor)
    except IntegrityError as exc:  # another account took the openid meanwhile
        raise WechatAlreadyBound() from exc
    return user


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****" if phone else ""


def user_set_phone_from_wechat(*, user: User, code: str, actor: Actor) -> User:
    """Keep the phone number the member shared in the mini-program (``getPhoneNumber``'s code).

    The call to WeChat happens before any transaction; the change is audited
    with the number masked. WeChat's errors: see ``wechat.phone_number``.
    """
    phone = wechat.phone_number(code)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = user.phone
        user.phone, user.phone_verified_at = phone, timezone.now()
        user.save(update_fields=["phone", "phone_verified_at"])
        if before != phone:
            audit_record(
                actor=actor,
                action="user.phone_verified",
                target=user,
                changes={"phone": [_masked(before), _masked(phone)]},
            )
    return user
