from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from members.api.views import managed_community
from shequn_backend.api.lists import SelectorListApi
from shequn_backend.api.schema import error_responses
from trust.models import ContentPost
from trust.services import content_post_create


class PostInput(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=32), max_length=20, required=False, default=list
    )
    published_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PostOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    published_at = serializers.DateTimeField()


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
        post = content_post_create(community=community, created_by=request.user, **data.validated_data)
        return Response(PostOutput(post).data, status=status.HTTP_201_CREATED)
