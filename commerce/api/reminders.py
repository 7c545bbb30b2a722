"""GET /api/v1/me/reminders/: the caller's own repurchase and renewal reminders."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers

from commerce import selectors
from commerce.models import Reminder
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.schema import error_responses


class ReminderProductOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class ReminderCouponOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text='Send it as "coupon" with the renewal join.')
    name = serializers.CharField(source="coupon.name")


class ReminderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Reminder.Kind.choices)
    community = serializers.CharField(source="community.slug")
    product = serializers.SerializerMethodField()
    due_at = serializers.DateTimeField()
    message = serializers.CharField()
    coupon = ReminderCouponOutput(allow_null=True, help_text="A renewal offer given with the reminder.")

    @extend_schema_field(ReminderProductOutput(allow_null=True))
    def get_product(self, reminder: Reminder) -> dict | None:
        if reminder.product_id is None:
            return None
        return {"id": reminder.product_id, "title": reminder.product.title}


@extend_schema(responses={200: ReminderOutput(many=True), **error_responses(401)})
class MyRemindersApi(SelectorListApi):
    serializer_class = ReminderOutput
    model = Reminder

    def select(self):
        return selectors.reminder_list_for_user(user=self.request.user)
