from django.urls import path

from trust.api import views

urlpatterns = [
    path(
        "owner/communities/<slug:slug>/posts/", views.OwnerPostListCreateApi.as_view(), name="owner-post-list"
    ),
    path(
        "owner/communities/<slug:slug>/dashboard/",
        views.OwnerDashboardApi.as_view(),
        name="owner-community-dashboard",
    ),
]
