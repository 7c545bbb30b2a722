from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from shequn_backend.api.exceptions import json_not_found

# The API root's links: its own pages first, then the main resources (URL names).
API_ROOT_LINKS = {
    "docs": "docs",
    "schema": "schema",
    "health": "healthz",
    "auth_login": "auth-login",
    "auth_register": "auth-register",
    "me": "me",
    "communities": "community-list",
    "memberships": "my-memberships",
    "orders": "order-list",
    "referrals": "my-referrals",
    "owner_communities": "owner-community-list",
}

HealthOutput = inline_serializer(
    name="HealthOutput", fields={"status": serializers.ChoiceField(choices=["ok", "unavailable"])}
)


class AnyAccept(BaseContentNegotiation):
    """JSON whatever the probe's ``Accept`` header says."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class HealthzApi(APIView):
    """200 when the database answers, 503 otherwise; for load balancers and compose."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    content_negotiation_class = AnyAccept

    @extend_schema(
        operation_id="healthz",
        responses={
            200: HealthOutput,
            503: OpenApiResponse(response=HealthOutput, description="The database does not answer."),
        },
    )
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any database failure means unhealthy
            return Response({"status": "unavailable"}, status=503)
        return Response({"status": "ok"})


healthz = HealthzApi.as_view()


class ApiRootApi(APIView):
    """What this API is and where to start: its name, version and links."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="api_root",
        responses={
            200: inline_serializer(
                name="ApiRootOutput",
                fields={
                    "name": serializers.CharField(),
                    "version": serializers.CharField(),
                    "links": serializers.DictField(child=serializers.URLField()),
                },
            )
        },
    )
    def get(self, request):
        links = {key: request.build_absolute_uri(reverse(name)) for key, name in API_ROOT_LINKS.items()}
        spectacular = settings.SPECTACULAR_SETTINGS
        return Response({"name": spectacular["TITLE"], "version": spectacular["VERSION"], "links": links})


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Any path under /api/ that no view matched: the contract's JSON 404, whatever DEBUG says."""
    return json_not_found(request)
