"""Event tickets: `GET /me/tickets/` for members, `POST /owner/communities/{slug}/check-ins/` at the door."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce import errors, selectors
from commerce.models import Ticket
from commerce.services.tickets import MAX_CODE_INPUT, ticket_check_in
from members.models import Community
from members.selectors import community_get_for_manager
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.schema import error_responses


class TicketProductOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class TicketOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(help_text="Show it (or its QR code) at the door.")
    product = TicketProductOutput(help_text="The event.")
    community = serializers.CharField(source="community.slug")
    starts_at = serializers.DateTimeField(source="product.starts_at")
    location = serializers.CharField(source="product.location")
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    order = serializers.IntegerField(source="order_id")
    checked_in_at = serializers.DateTimeField(allow_null=True)


class TicketHolderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    nickname = serializers.CharField()


class CheckedInTicketOutput(TicketOutput):
    buyer = TicketHolderOutput(help_text="Who bought the ticket, for the door staff.")


class CheckInInput(serializers.Serializer):
    code = serializers.CharField(max_length=MAX_CODE_INPUT, trim_whitespace=True)


@extend_schema(responses={200: TicketOutput(many=True), **error_responses(401)})
class MyTicketsApi(SelectorListApi):
    """The caller's tickets, one per seat bought (valid, checked in or refunded)."""

    serializer_class = TicketOutput
    model = Ticket

    def select(self):
        return selectors.ticket_list_for_buyer(buyer=self.request.user)


class OwnerCheckInApi(APIView):
    """Check a ticket in by its code, for the community's owner and operators (404 for anyone else)."""

    @extend_schema(
        request=CheckInInput, responses={200: CheckedInTicketOutput, **error_responses(400, 401, 404, 409)}
    )
    def post(self, request, slug):
        try:
            community = community_get_for_manager(user=request.user, slug=slug)
        except Community.DoesNotExist:
            raise errors.NotFound() from None
        data = CheckInInput(data=request.data)
        data.is_valid(raise_exception=True)
        ticket = ticket_check_in(actor=request.user, community=community, code=data.validated_data["code"])
        return Response(CheckedInTicketOutput(ticket).data)
