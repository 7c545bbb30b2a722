"""Record which members use their community each day (the activity behind DAU/MAU)."""

from functools import partial

from shequn_backend.api import is_api_request
from shequn_backend.events import on_commit_robust
from trust.activity import activity_record_member, activity_seen_today


class ActivityMiddleware:
    """After a successful, authenticated API request to a community's path, mark the member active today.

    Community-scoped paths are those whose URL pattern captures the
    community's ``slug`` (``/api/v1/communities/{slug}/...``,
    ``/api/v1/owner/communities/{slug}/...``). DRF authenticates bearer
    tokens inside the view and sets the user on the underlying request, so
    the check runs after the response. A member already recorded today costs
    one cache read; the first request of the day writes once the request's
    work is committed (``on_commit``: at once under autocommit). Recording
    never fails the request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 and is_api_request(request):
            self._schedule(request)
        return response

    def _schedule(self, request) -> None:
        match = getattr(request, "resolver_match", None)
        slug = match.kwargs.get("slug") if match is not None else None
        user = getattr(request, "user", None)
        if not slug or user is None or not user.is_authenticated:
            return
        if not activity_seen_today(user_id=user.pk, slug=slug):
            on_commit_robust(partial(activity_record_member, user_id=user.pk, slug=slug))
