import re
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework import exceptions

from shequn_backend.sql import joined_columns, joined_instances, prepared_cursor

# What user_token hands out: 64 hex characters, no prefix.
TOKEN_PATTERN = re.compile(rb"[0-9a-f]{64}")


@cache
def _token_query() -> str:
    """The SQL of the token-and-user read (built once per process)."""
    quote = connection.ops.quote_name
    user_model = get_user_model()
    return (
        f"SELECT {joined_columns(_token_and_user())} FROM {quote(AuthToken._meta.db_table)} t"  # noqa: S608 - names from the models' metadata
        f" JOIN {quote(user_model._meta.db_table)} u ON u.{quote(user_model._meta.pk.column)} = t."
        f"{quote(AuthToken._meta.get_field('user').column)}"
        f" WHERE t.{quote(AuthToken._meta.get_field('digest').column)} = %s"
        f" AND t.{quote(AuthToken._meta.get_field('expiry').column)} > %s LIMIT 1"
    )


def _token_and_user():
    return (("t", AuthToken), ("u", get_user_model()))


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <token>``: knox's per-device tokens, stored hashed, with an expiry.

    One query (token and user by the token's digest), where knox would also load
    every other token of the user on each request; expired tokens are refused
    here and deleted at the user's next login. Nothing is cached: a token logged
    out or expired is refused on the next request. On PostgreSQL the query is SQL
    built once per process (``shequn_backend/sql.py``: no ORM query building per
    request); other databases go through the ORM.
    """

    def authenticate_credentials(self, token: bytes):
        if not TOKEN_PATTERN.fullmatch(token):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if connection.vendor != "postgresql":  # SQLite (the embedded run mode) converts values: the ORM
            return self._authenticate_with_orm(token)
        with prepared_cursor() as cursor:
            cursor.execute(_token_query(), [hash_token(token.decode()), timezone.now()])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        auth_token, user = joined_instances(row, _token_and_user())
        AuthToken.user.field.set_cached_value(auth_token, user)
        return self.validate_user(auth_token)

    def _authenticate_with_orm(self, token: bytes):
        tokens = AuthToken.objects.select_related("user").filter(
            digest=hash_token(token.decode()), expiry__gt=timezone.now()
        )
        auth_token = next(iter(tokens.order_by()[:1]), None)  # the digest is the key: no ORDER BY
        if auth_token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return self.validate_user(auth_token)
