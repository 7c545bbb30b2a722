"""Public (anonymous) read endpoints: throttled per address and served from a short-lived cache.

Anyone may browse the community pages without logging in. So that anonymous
traffic cannot starve members, anonymous callers share a per-address rate
(``anon_browse``) and every successful answer is cached for
``PUBLIC_CACHE_SECONDS`` (keyed by path and query string): a burst costs one
database read per page per period, whoever sends it. Members are not
throttled here; they read the same cached pages.
"""

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle


class AnonBrowseThrottle(AnonRateThrottle):
    scope = "anon_browse"


def public_cache_key(request) -> str:
    return "public:v1:" + hashlib.sha256(request.get_full_path().encode()).hexdigest()[:32]


class CachedPublicMixin:
    """For public APIViews: throttle anonymous callers; ``cached(request, answer)`` answers from the cache."""

    throttle_classes = [AnonBrowseThrottle]

    def cached(self, request, answer: Callable[[], Response]):
        seconds = settings.PUBLIC_CACHE_SECONDS
        key = public_cache_key(request) if seconds > 0 else None
        if key is not None:
            body = cache.get(key)
            if body is not None:
                return HttpResponse(body, content_type="application/json")
        response = answer()
        if key is not None and response.status_code == 200:
            cache.set(key, JSONRenderer().render(response.data), seconds)
        return response
