"""Request guards that apply to every endpoint; the admin's middleware, skipped by the API."""

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import JsonResponse
from django.utils.translation import gettext as _

from shequn_backend.api import is_api_request
from shequn_backend.api.exceptions import error_body


class RejectNulBytesMiddleware:
    """Refuse NUL bytes in the path or query string with a 400.

    PostgreSQL text cannot hold NUL, so a ``?search=%00`` would otherwise fail
    deep in a query as a server error. Bodies are checked by the serializers
    (DRF's CharField refuses NUL).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in key or "\x00" in value for key, value in request.GET.items()
        ):
            return JsonResponse(
                error_body(
                    "bad_request", _("The request contains a NUL character. Remove it and try again.")
                ),
                status=400,
            )
        return self.get_response(request)


class _BrowserOnly:
    """A middleware the admin's browsers need and the API does not: API requests skip it.

    The API authenticates a bearer token per request (DRF sets ``request.user``) and keeps no
    session, login or flash message: these cost every API request about 0.2 ms of CPU for nothing
    (docs/benchmarks.md). Subclasses keep Django's checks for the admin's middleware satisfied.
    """

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages.MessageMiddleware):
    pass
