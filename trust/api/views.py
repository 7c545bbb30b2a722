from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from members.api.views import managed_community
from shequn_backend.api.fields import DateTimeField, StrictCharField
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.schema import error_responses
from trust.health import LifecycleStage, community_health
from trust.models import ContentPost
from trust.services import content_post_create


class PostInput(serializers.Serializer):
    title = StrictCharField(max_length=200)
    tags = serializers.ListField(
        child=StrictCharField(max_length=32), max_length=20, required=False, default=list
    )
    published_at = DateTimeField(required=False, allow_null=True, default=None)


class PostOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    published_at = DateTimeField()


class OwnerPostListCreateApi(SelectorListApi):
    """The community's professional content: evidence of the domains where it earned trust."""

    serializer_class = PostOutput
    model = ContentPost

    def select(self):
        return ContentPost.objects.filter(community=managed_community(self.request, self.kwargs["slug"]))

    @extend_schema(request=PostInput, responses={201: PostOutput, **error_responses(400, 401, 404)})
    def post(self, request, slug):
        community = managed_community(request, slug)
        data = PostInput(data=request.data)
        data.is_valid(raise_exception=True)
        post = content_post_create(community=community, actor=request.user, **data.validated_data)
        return Response(PostOutput(post).data, status=status.HTTP_201_CREATED)


class DashboardMembersOutput(serializers.Serializer):
    active = serializers.IntegerField(source="active_members")
    new_30d = serializers.IntegerField()
    churned_30d = serializers.IntegerField()


class DashboardActivityOutput(serializers.Serializer):
    dau = serializers.FloatField()
    mau = serializers.IntegerField()
    dau_mau = serializers.FloatField()
    weekly_active = serializers.ListField(child=serializers.IntegerField(), source="churn.weekly_active")


class DashboardChurnOutput(serializers.Serializer):
    alarm = serializers.BooleanField()
    declining_weeks = serializers.IntegerField()
    days_to_zero = serializers.IntegerField(allow_null=True)


class DashboardKolOutput(serializers.Serializer):
    membership_id = serializers.IntegerField()
    nickname = serializers.CharField()
    role = serializers.CharField()
    members_brought = serializers.IntegerField()
    sales_brought = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField(default="CNY", help_text="The currency of sales_brought.")


class DashboardOutput(serializers.Serializer):
    """The contract's dashboard fields, then the details the admin dashboard shows too."""

    members = DashboardMembersOutput(source="*")
    orders_30d = serializers.IntegerField()
    revenue_30d = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    conversion_rate = serializers.FloatField()
    repurchase_rate = serializers.FloatField()
    referral_share = serializers.FloatField()
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices)
    lifecycle_stage_label = serializers.SerializerMethodField()
    activity = DashboardActivityOutput(source="*")
    churn_alarm = DashboardChurnOutput(source="churn")
    buyers_30d = serializers.IntegerField()
    referrers_90d = serializers.IntegerField()
    top_referrer_share = serializers.FloatField()
    top_kols = DashboardKolOutput(many=True)
    as_of = serializers.DateTimeField()

    def to_representation(self, health):
        data = super().to_representation(health)
        for kol in data["top_kols"]:
            kol["currency"] = data["currency"]  # every amount carries its currency
        return data

    def get_lifecycle_stage_label(self, health) -> str:
        return str(health.lifecycle_stage.label)


class OwnerDashboardApi(APIView):
    """The community's health at a glance, for its owner and operators (404 for anyone else)."""

    @extend_schema(responses={200: DashboardOutput, **error_responses(401, 404)})
    def get(self, request, slug):
        community = managed_community(request, slug)
        return Response(DashboardOutput(community_health(community=community)).data)
