"""Render every API error, DRF's own included, as the contract's error shape.

    {"error": {"code": "...", "message": "...", "fields": {...}}}

``fields`` appears only for validation errors.
"""

import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from shequn_backend.api import is_api_request
from shequn_backend.errors import ApplicationError


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    error = {"code": code, "message": str(message)}
    if fields:
        error["fields"] = fields
    return {"error": error}


# "lines.0.sku" (a list index written as a dotted part) is written "lines[0].sku" in answers.
_DOTTED_INDEX = re.compile(r"\.(\d+)(?=\.|\[|$)")


def field_key(key) -> str:
    """One form for every ``fields`` key: nested objects dotted, list items indexed, ``lines[0].sku``."""
    return _DOTTED_INDEX.sub(r"[\1]", str(key))


def _join(parent, child: str) -> str:
    if isinstance(parent, int) or str(parent).isdigit():
        return f"[{parent}]" + ("" if child.startswith("[") else ".") + child
    return f"{parent}" + ("" if child.startswith("[") else ".") + child


def _flatten(detail) -> dict:
    """Turn DRF's nested ``ValidationError.detail`` into ``{field: [messages]}``.

    Objects nest with dots and list items (a ``many=True`` serializer's list, or a ``ListField``'s
    ``{index: errors}``) with brackets: ``{"lines[0].sku": [...], "plans[1].price": [...]}``.
    """
    if isinstance(detail, dict):
        flat = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub_key, messages in _flatten(value).items():
                    flat[field_key(_join(key, sub_key))] = messages
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub_key, messages in _flatten(item).items():
                        flat[field_key(f"{key}[{index}].{sub_key}")] = messages
            else:
                name = f"[{key}]" if isinstance(key, int) else field_key(key)
                flat[name] = [str(m) for m in (value if isinstance(value, list) else [value])]
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {"non_field_errors": [str(m) for m in messages]}


def _fields(fields: dict | None) -> dict | None:
    return {field_key(key): messages for key, messages in fields.items()} if fields else fields


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, _fields(exc.fields)), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let Django answer 500 and log it

    set_rollback()
    headers = {}
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(
            "validation_error",
            _("Some fields are invalid. Correct them and send the request again."),
            _flatten(exc.detail),
        )
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        body = error_body(code, exc.detail if isinstance(exc.detail, str) else exc.default_detail)
    return Response(body, status=exc.status_code, headers=headers)


def json_not_found(request, exception=None):
    """The 404 handler for URLs no view matched: JSON under /api/, Django's page elsewhere."""
    if is_api_request(request):
        return JsonResponse(error_body("not_found", _("Not found.")), status=status.HTTP_404_NOT_FOUND)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request):
    if is_api_request(request):
        return JsonResponse(
            error_body("server_error", _("Something went wrong on our side. Try again later.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    from django.views.defaults import server_error

    return server_error(request)


def json_bad_request(request, exception=None):
    """Oversized bodies and the like fail before DRF sees them: answer 400 JSON under /api/."""
    if is_api_request(request):
        return JsonResponse(
            error_body("bad_request", _("The request is malformed or too large.")),
            status=status.HTTP_400_BAD_REQUEST,
        )
    from django.views.defaults import bad_request

    return bad_request(request, exception)
