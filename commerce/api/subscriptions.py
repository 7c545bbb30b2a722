"""GET, POST /api/v1/me/subscriptions/: the caller's unused subscription-message consents per template."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.services.subscriptions import (
    RESULTS,
    subscription_consents_for_user,
    subscription_results_record,
    subscription_templates,
)
from shequn_backend.api.schema import error_responses


class SubscriptionResultsInput(serializers.Serializer):
    """What ``wx.requestSubscribeMessage`` answered, per template id."""

    results = serializers.DictField(child=serializers.ChoiceField(choices=RESULTS), allow_empty=False)

    def validate_results(self, results: dict) -> dict:
        known = set(subscription_templates().values())
        unknown = {
            template: [_("Not one of this mini-program's message templates.")]
            for template in results
            if template not in known
        }
        if unknown:
            raise serializers.ValidationError(unknown)
        return results


CONSENTS = OpenApiResponse(
    response={"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
    description="Unused consents per template id (every configured template).",
)


class MySubscriptionsApi(APIView):
    @extend_schema(responses={200: CONSENTS, **error_responses(401)})
    def get(self, request):
        return Response(subscription_consents_for_user(user=request.user))

    @extend_schema(request=SubscriptionResultsInput, responses={200: CONSENTS, **error_responses(400, 401)})
    def post(self, request):
        data = SubscriptionResultsInput(data=request.data)
        data.is_valid(raise_exception=True)
        ledger = subscription_results_record(
            actor=request.user, user=request.user, results=data.validated_data["results"]
        )
        return Response(ledger)
