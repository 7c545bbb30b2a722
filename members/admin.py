from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from members.models import User, UserInterest


class UserInterestInline(admin.TabularInline):
    model = UserInterest
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "nickname", "is_staff", "date_joined"]
    search_fields = ["username", "nickname"]
    fieldsets = (*DjangoUserAdmin.fieldsets, (_("Profile"), {"fields": ["nickname"]}))
    inlines = [UserInterestInline]
