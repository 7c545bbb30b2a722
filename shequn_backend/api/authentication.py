import re

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework import exceptions

# What user_token hands out: 64 hex characters, no prefix.
TOKEN_PATTERN = re.compile(rb"[0-9a-f]{64}")


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <token>``: knox's per-device tokens, stored hashed, with an expiry.

    One query (token and user by the token's digest), where knox would also load
    every other token of the user on each request; expired tokens are refused
    here and deleted at the user's next login.
    """

    def authenticate_credentials(self, token: bytes):
        if not TOKEN_PATTERN.fullmatch(token):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        tokens = AuthToken.objects.select_related("user").filter(
            digest=hash_token(token.decode()), expiry__gt=timezone.now()
        )
        auth_token = next(iter(tokens.order_by()[:1]), None)  # the digest is the key: no ORDER BY
        if auth_token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return self.validate_user(auth_token)
