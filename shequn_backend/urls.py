from django.contrib import admin
from django.urls import include, path, re_path, reverse_lazy
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shequn_backend.api.views import ApiRootApi, api_not_found, healthz

admin.site.site_header = _("Shequn community commerce admin")
admin.site.site_title = _("Shequn admin")
admin.site.index_title = _("Run your communities")
admin.site.site_url = reverse_lazy("docs")  # "查看站点": the API's interactive docs (there is no web shop)

api_v1 = [
    path("", ApiRootApi.as_view(), name="api-root"),
    # Commerce first: checkout and the product and order lists are the busiest paths, and every
    # include tried before the one that matches costs its patterns (no path is in two of them).
    path("", include("commerce.api.urls")),
    path("", include("members.api.urls")),
    path("", include("trust.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # Last: unknown API paths answer the contract's JSON 404 (Django's own page would be HTML under DEBUG).
    re_path(r"^api/", api_not_found, name="api-not-found"),
]

handler400 = "shequn_backend.api.exceptions.json_bad_request"
handler404 = "shequn_backend.api.exceptions.json_not_found"
handler500 = "shequn_backend.api.exceptions.json_server_error"
