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

# What user_token hands out: 64 hex characters, no prefix.
TOKEN_PATTERN = re.compile(rb"[0-9a-f]{64}")


@cache
def _token_query() -> tuple[str, list[str], list[str]]:
    """The SQL of the token-and-user read, and the column names of each part (built once)."""
    user_model = get_user_model()
    quote = connection.ops.quote_name
    token_columns = [field.attname for field in AuthToken._meta.concrete_fields]
    user_columns = [field.attname for field in user_model._meta.concrete_fields]
    select = [f"t.{quote(field.column)}" for field in AuthToken._meta.concrete_fields]
    select += [f"u.{quote(field.column)}" for field in user_model._meta.concrete_fields]
    sql = (
        f"SELECT {', '.join(select)} FROM {quote(AuthToken._meta.db_table)} t"  # noqa: S608 - names from the models' metadata
        f" JOIN {quote(user_model._meta.db_table)} u ON u.{quote(user_model._meta.pk.column)} = t."
        f"{quote(AuthToken._meta.get_field('user').column)}"
        f" WHERE t.{quote(AuthToken._meta.get_field('digest').column)} = %s"
        f" AND t.{quote(AuthToken._meta.get_field('expiry').column)} > %s LIMIT 1"
    )
    return sql, token_columns, user_columns


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <token>``: knox's per-device tokens, stored hashed, with an expiry.

    One query (token and user by the token's digest), where knox would also load
    every other token of the user on each request; expired tokens are refused
    here and deleted at the user's next login. Nothing is cached: a token logged
    out or expired is refused on the next request. The query is plain SQL built
    once (no ORM query building per request); PostgreSQL returns the user's fields as
    the ORM would (no converters); other databases go through the ORM.
    """

    def authenticate_credentials(self, token: bytes):
        if not TOKEN_PATTERN.fullmatch(token):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if connection.vendor != "postgresql":  # SQLite (the embedded run mode) converts values: the ORM
            return self._authenticate_with_orm(token)
        sql, token_columns, user_columns = _token_query()
        db = connection.alias
        with connection.cursor() as cursor:
            cursor.execute(sql, [hash_token(token.decode()), timezone.now()])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        split = len(token_columns)
        auth_token = AuthToken.from_db(db, token_columns, row[:split])
        user = get_user_model().from_db(db, user_columns, row[split:])
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
