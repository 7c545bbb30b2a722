import copy
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.models import AuthToken

from members.admin_scoping import CommunityScopedAdminMixin, ScopedInline
from members.errors import NotPendingApproval
from members.models import (
    Community,
    EntryPlan,
    InviteCode,
    Membership,
    PointsEntry,
    Tier,
    User,
    UserInterest,
)
from members.services.communities import community_ensure_owner_membership, community_set_attributes
from members.services.memberships import membership_approve, new_referral_code
from members.services.users import user_password_change


class UserInterestInline(admin.TabularInline):
    model = UserInterest
    extra = 0


# API tokens are issued and revoked by the users service only (login, logout, password change);
# knox's own admin would create tokens beside it.
admin.site.unregister(AuthToken)


class ServicePasswordChangeForm(AdminPasswordChangeForm):
    """The admin's password form, saved through the service: the user's API tokens are revoked."""

    def __init__(self, user, *args, actor, **kwargs):
        self.actor = actor
        super().__init__(user, *args, **kwargs)

    def save(self, commit=True):
        usable = self.cleaned_data["set_usable_password"]
        password = self.cleaned_data["password1"] if usable else None
        user_password_change(user=self.user, new_password=password, actor=self.actor)
        return self.user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Superusers only: owners manage people through memberships, not accounts."""

    list_display = ["username", "nickname", "is_staff", "date_joined"]
    search_fields = ["username", "nickname"]
    fieldsets = (*DjangoUserAdmin.fieldsets, (_("Profile"), {"fields": ["nickname"]}))
    inlines = [UserInterestInline]

    def user_change_password(self, request, id, form_url=""):
        # Django builds the form as self.change_password_form(user, data): bind the acting
        # admin on a per-request copy (the ModelAdmin instance is shared between threads).
        per_request = copy.copy(self)
        per_request.change_password_form = partial(ServicePasswordChangeForm, actor=request.user)
        return DjangoUserAdmin.user_change_password(per_request, request, id, form_url)


class EntryPlanInline(ScopedInline):
    model = EntryPlan
    fields = ["name", "price", "currency", "period_days", "trial_days", "refund_window_days", "is_active"]


class TierInline(ScopedInline):
    model = Tier
    fields = ["level", "name", "points_threshold", "discount_percent"]


class CommunityForm(forms.ModelForm):
    attributes_text = forms.CharField(
        label=_("attributes"),
        required=False,
        help_text=_(
            "The community's shared attributes (共同属性), separated by commas, e.g. 财经, 投资理财, 读书."
        ),
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = Community
        exclude: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["attributes_text"].initial = ", ".join(self.instance.attribute_tags)

    def attribute_list(self) -> list[str]:
        text = self.cleaned_data.get("attributes_text", "")
        return [part for part in text.replace("，", ",").replace("、", ",").split(",") if part.strip()]


@admin.register(Community)
class CommunityAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    community_field = "self"
    form = CommunityForm
    list_display = ["name", "slug", "entry_type", "owner", "active_members", "created_at"]
    list_filter = ["entry_type", "created_at"]
    search_fields = ["name", "slug", "attributes__tag"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [EntryPlanInline, TierInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "owner", "entry_type", "attributes_text"]}),
        (_("Mission and rules"), {"fields": ["mission", "description", "rules"]}),
        (
            _("Referral and points"),
            {
                "fields": [
                    "referral_level1_percent",
                    "referral_level2_percent",
                    "return_window_days",
                    "commission_on_entry_orders",
                    "points_per_yuan",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        active = Q(memberships__status=Membership.Status.ACTIVE)
        return super().get_queryset(request).annotate(active_count=Count("memberships", filter=active))

    @admin.display(description=_("active members"), ordering="active_count")
    def active_members(self, obj):
        return obj.active_count

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["owner"]

    def has_add_permission(self, request, *args):
        return request.user.is_staff  # any staff user may found a community and becomes its owner

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            obj.owner = request.user
        super().save_model(request, obj, form, change)
        community_set_attributes(community=obj, attributes=form.attribute_list())
        community_ensure_owner_membership(community=obj)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "community", "role", "status", "tier", "referred_by", "expires_at"]

    def clean(self):
        cleaned = super().clean()
        community, tier, referrer = cleaned.get("community"), cleaned.get("tier"), cleaned.get("referred_by")
        if community and tier and tier.community_id != community.pk:
            self.add_error("tier", _("Choose a tier of this membership's community."))
        if community and referrer and referrer.community_id != community.pk:
            self.add_error("referred_by", _("The referrer must be a member of the same community."))
        if referrer and self.instance.pk and referrer.pk == self.instance.pk:
            self.add_error("referred_by", _("A member cannot refer themselves."))
        return cleaned


@admin.register(Membership)
class MembershipAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    form = MembershipForm
    scoped_foreign_keys = {"community": "self", "tier": "community", "referred_by": "community"}
    list_display = ["nickname", "community", "role", "status", "tier", "points", "joined_at", "expires_at"]
    list_filter = ["status", "role", "tier", "joined_at", "community"]
    search_fields = ["user__nickname", "user__username", "referral_code"]
    list_select_related = ["user", "community", "tier"]
    readonly_fields = ["points", "referral_code", "joined_at"]
    raw_id_fields = ["user"]
    actions = ["approve"]
    date_hierarchy = "joined_at"

    @admin.display(description=_("nickname"), ordering="user__nickname")
    def nickname(self, obj):
        return obj.user.nickname or obj.user.username

    def save_model(self, request, obj, form, change):
        if not obj.referral_code:
            obj.referral_code = new_referral_code()
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Approve selected memberships"))
    def approve(self, request, queryset):
        approved = 0
        for membership in queryset.filter(status=Membership.Status.PENDING_APPROVAL).select_related(
            "community"
        ):
            try:
                membership_approve(membership_id=membership.pk, community=membership.community)
                approved += 1
            except NotPendingApproval:
                continue
        skipped = queryset.count() - approved
        self.message_user(
            request,
            ngettext("%(count)d membership approved.", "%(count)d memberships approved.", approved)
            % {"count": approved},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                _("%(count)d were not waiting for approval and were left unchanged.") % {"count": skipped},
                messages.WARNING,
            )


@admin.register(InviteCode)
class InviteCodeAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    scoped_foreign_keys = {"community": "self"}
    list_display = ["code", "community", "uses", "max_uses", "expires_at", "is_active"]
    list_filter = ["is_active", "community"]
    search_fields = ["code"]
    readonly_fields = ["uses"]


@admin.register(PointsEntry)
class PointsEntryAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    """The ledger is append-only: read it here; points change through services."""

    community_field = "membership__community"
    list_display = ["membership", "delta", "reason", "created_at"]
    list_filter = ["created_at", "membership__community"]
    search_fields = ["membership__user__nickname", "reason", "idempotency_key"]
    list_select_related = ["membership__user", "membership__community"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
