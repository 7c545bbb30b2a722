from django.urls import path

from members.api import views

urlpatterns = [
    path("auth/register/", views.RegisterApi.as_view(), name="auth-register"),
    path("auth/login/", views.LoginApi.as_view(), name="auth-login"),
    path("auth/wechat/", views.WechatLoginApi.as_view(), name="auth-wechat"),
    path("me/", views.MeApi.as_view(), name="me"),
]
