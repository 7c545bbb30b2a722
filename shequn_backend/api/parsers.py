"""The API's JSON parser: bounded body size and nesting depth.

DRF reads the request stream itself, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
never applies to API bodies; and a 2 KB ``[[[[...]]]]`` makes the standard
library's decoder raise ``RecursionError``, which DRF does not catch.
"""

from json import JSONDecodeError

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers, status
from rest_framework.utils import json

# Our contract's bodies nest a few levels (an order's lines, a community's plans).
MAX_JSON_DEPTH = 32


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large. Send less data at once.")
    default_code = "request_too_large"


class TooDeeplyNested(exceptions.ParseError):
    default_detail = _("The JSON body is nested too deeply. Send a flatter document.")


def json_depth_exceeds(value, limit: int) -> bool:
    """Whether the decoded document nests deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def read_limited(stream, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; one byte more means it is too large."""
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise RequestTooLarge()
    return body


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request is not None and _declared_length(request) > limit:
            raise RequestTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        body = read_limited(stream, limit) if limit is not None else stream.read()
        try:
            data = json.loads(body.decode(encoding))
        except RecursionError:
            raise TooDeeplyNested() from None
        except ValueError as exc:  # UnicodeDecodeError included
            raise exceptions.ParseError(json_error_message(exc)) from None
        if json_depth_exceeds(data, MAX_JSON_DEPTH):
            raise TooDeeplyNested()
        return data


def json_error_message(exc: ValueError) -> str:
    """Where the body stops being JSON, in the reader's language (Python's own text is English)."""
    if isinstance(exc, JSONDecodeError):
        return _(
            "The request body is not valid JSON (line %(line)d, column %(column)d). "
            "Send a JSON object with double-quoted names."
        ) % {"line": exc.lineno, "column": exc.colno}
    return _("The request body is not UTF-8 encoded JSON. Send it as UTF-8.")


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return 0
