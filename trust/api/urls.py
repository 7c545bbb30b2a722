from django.urls import path

from trust.api import views

urlpatterns = [
    path(
        "owner/communities/<slug:slug>/posts/", views.OwnerPostListCreateApi.as_view(), name="owner-post-list"
    ),
]
