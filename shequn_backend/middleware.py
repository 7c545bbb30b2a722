"""Request guards that apply to every endpoint."""

from django.http import JsonResponse
from django.utils.translation import gettext as _

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
