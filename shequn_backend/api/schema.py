"""OpenAPI pieces shared by every app's views."""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "shequn_backend.api.authentication.BearerTokenAuthentication"
    name = "BearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Token from login or register."}


ErrorResponse = inline_serializer(
    name="ErrorResponse",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField()), required=False
                ),
            },
        )
    },
)


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": 100},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Optional, at most 100 characters. The same key from the same user answers as the first "
        "request did (same status and body) and creates nothing new; the same key with a different "
        "request is refused (409 `idempotency_key_reused`)."
    ),
)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The contract's error shape for each of the given 4xx statuses."""
    return {code: OpenApiResponse(response=ErrorResponse) for code in statuses}


class MoneyInputExtension(OpenApiSerializerFieldExtension):
    """Money inputs: a string with the exact pattern the field validates against."""

    target_class = "shequn_backend.api.fields.MoneyInput"

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = {"type": "string", "format": "decimal", "pattern": field.pattern, "example": "12.30"}
        if field.allow_null:
            schema["nullable"] = True
        return schema


class RefusedFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "shequn_backend.api.fields.RefusedField"

    def map_serializer_field(self, auto_schema, direction):
        return {"not": {}, "description": "Read-only: sending it is refused with 400."}


ERROR_DESCRIPTIONS = {
    400: "The request is malformed or a field is invalid (`code` says which; `fields` names the fields).",
    401: "No valid `Authorization: Bearer <token>` header.",
    403: "The caller may not do this (e.g. `membership_required`).",
    404: "No such resource for this caller, or a page beyond the last.",
    409: "The request conflicts with the current state (e.g. `out_of_stock`); reload and retry.",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    429: "Too many attempts; retry after `Retry-After` seconds.",
    502: "The payment or WeChat service answered with an error; retry later.",
    503: "A service we depend on is unavailable; retry later with the same `Idempotency-Key`.",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, adding the error answers every operation of a kind can give.

    Each view names its own business errors (403, 409, 502, 503 ...); the statuses that follow from
    the plumbing are added here: 400 (malformed requests: NUL bytes, bad JSON, invalid fields),
    401 (authenticated views), 404 (path parameters, pages beyond the last), 413 and 415 (JSON
    bodies), 429 (throttled views). Every error answer has the contract's error shape.
    """

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in sorted(self.common_error_statuses()):
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    ErrorResponse, str(code), direction=direction
                )
        for code, response in responses.items():
            if code.isdigit() and int(code) in ERROR_DESCRIPTIONS and not response.get("description"):
                response["description"] = ERROR_DESCRIPTIONS[int(code)]
        return responses

    def common_error_statuses(self) -> set[int]:
        view = self.view
        codes = {400}
        if view.get_authenticators():
            codes.add(401)
        if "{" in self.path or (self._is_list_view() and self._get_paginator() is not None):
            codes.add(404)
        if self.method in ("POST", "PUT", "PATCH") and view.parser_classes and self.get_request_serializer():
            codes |= {413, 415}
        if view.get_throttles():
            codes.add(429)
        return codes
