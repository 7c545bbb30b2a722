from django.urls import path

from members.api import views

urlpatterns = [
    path("auth/register/", views.RegisterApi.as_view(), name="auth-register"),
    path("auth/login/", views.LoginApi.as_view(), name="auth-login"),
    path("auth/wechat/", views.WechatLoginApi.as_view(), name="auth-wechat"),
    path("auth/wechat/bind/", views.WechatBindApi.as_view(), name="auth-wechat-bind"),
    path("auth/logout/", views.LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", views.LogoutAllApi.as_view(), name="auth-logout-all"),
    path("auth/password/", views.PasswordChangeApi.as_view(), name="auth-password"),
    path("me/", views.MeApi.as_view(), name="me"),
    path("me/phone/", views.MyPhoneApi.as_view(), name="my-phone"),
    path("me/memberships/", views.MyMembershipsApi.as_view(), name="my-memberships"),
    path("me/points/", views.MyPointsApi.as_view(), name="my-points"),
    path("me/addresses/", views.MyAddressListCreateApi.as_view(), name="my-addresses"),
    path("me/addresses/<int:address_id>/", views.MyAddressDetailApi.as_view(), name="my-address-detail"),
    path("communities/", views.CommunityListApi.as_view(), name="community-list"),
    path("communities/<slug:slug>/", views.CommunityDetailApi.as_view(), name="community-detail"),
    path("owner/communities/", views.OwnerCommunityListCreateApi.as_view(), name="owner-community-list"),
    path(
        "owner/communities/<slug:slug>/",
        views.OwnerCommunityDetailApi.as_view(),
        name="owner-community-detail",
    ),
    path(
        "owner/communities/<slug:slug>/members/", views.OwnerMemberListApi.as_view(), name="owner-member-list"
    ),
    path(
        "owner/communities/<slug:slug>/members/<int:membership_id>/approve/",
        views.OwnerApproveApi.as_view(),
        name="owner-member-approve",
    ),
]
