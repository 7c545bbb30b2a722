import re

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

# Farther pages are left to the generic paginator (its count proves them empty): OFFSET stays in range.
MAX_WINDOW_OFFSET = 2**62


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=`` (whole numbers from 1; sizes above 100 return 100).

    A ``page_size`` that is not a whole number from 1 is refused (400) rather than silently
    replaced by the default, as the schema says; a page beyond the last is a 404.
    """

    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        digits = raw.lstrip("0")
        if not re.fullmatch(r"[0-9]+", raw) or not digits:
            message = _("Enter a whole number from 1 (at most %(max)d rows are returned).") % {
                "max": self.max_page_size
            }
            raise exceptions.ValidationError({self.page_size_query_param: [message]})
        return self.max_page_size if len(digits) > 6 else min(int(digits), self.max_page_size)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings and not re.fullmatch(r"0*[1-9][0-9]*", raw):
            raise exceptions.NotFound(self.invalid_page_message.format(page_number=raw, message=""))
        return super().get_page_number(request, paginator)

    def window(self, request) -> tuple[int, int] | None:
        """(page number, page size) for a list whose page query also counts the rows (``COUNT(*) OVER
        ()``), or None where the generic pagination must answer: ``page=last``, a page number or size
        it refuses (its 404 or 400, after the view's own checks), a page too far off to ask for.
        """
        self.request = request
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw in self.last_page_strings:
            return None
        try:
            size = self.get_page_size(request)
            number = int(self.get_page_number(request, None))
        except (exceptions.ValidationError, exceptions.NotFound):
            return None
        return (number, size) if number * size <= MAX_WINDOW_OFFSET else None

    def window_response(self, request, *, number: int, size: int, count: int, results: list) -> Response:
        """The page's answer as ``get_paginated_response`` gives it: ``count``, ``next``, ``previous``."""
        next_link = previous_link = None
        if number * size < count:
            next_link = replace_query_param(request.build_absolute_uri(), self.page_query_param, number + 1)
        if number == 2:
            previous_link = remove_query_param(request.build_absolute_uri(), self.page_query_param)
        elif number > 2:
            previous_link = replace_query_param(
                request.build_absolute_uri(), self.page_query_param, number - 1
            )
        return Response({"count": count, "next": next_link, "previous": previous_link, "results": results})

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Rows per page, from 1; above {self.max_page_size} counts as {self.max_page_size}."
                )
        return parameters
