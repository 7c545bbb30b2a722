import copy
import re
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.models import AuthToken

from members.admin_scoping import (
    CommunityScopedAdminMixin,
    ManagedCommunityFilter,
    ManagedTierFilter,
    ScopedInline,
    managed_community_ids,
)
from members.errors import CommissionRateCeilingExceeded, NotPendingApproval
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
from members.services import memberships as membership_services
from members.services.communities import (
    SETTINGS_FIELDS,
    commission_rates_check,
    community_create,
    community_update,
)
from members.services.invites import (
    invite_code_check,
    invite_code_create,
    invite_code_suggest,
    invite_code_update,
)
from members.services.plans import PLAN_FIELDS, entry_plan_check, entry_plan_create, entry_plan_update
from members.services.tiers import TIER_FIELDS, tier_check, tier_create, tier_delete, tier_update
from members.services.users import user_password_change, user_set_interests
from shequn_backend.errors import ApplicationError


def add_service_errors(
    form: forms.BaseForm, error: ApplicationError, default_field: str | None = None
) -> None:
    """Show a service's refusal on the form, next to the fields it names (the form's top otherwise)."""
    fields = error.fields or {default_field: [str(error.message)]}
    for name, messages_ in fields.items():
        field = name if name in form.fields else None
        for message in messages_:
            form.add_error(field, message)


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

    def save_formset(self, request, form, formset, change):
        """Interests change through the users service, which audits and announces them."""
        if formset.model is not UserInterest:
            return super().save_formset(request, form, formset, change)
        kept = [row.cleaned_data for row in formset.forms if row.cleaned_data]
        tags = [data["tag"] for data in kept if data.get("tag") and not data.get("DELETE")]
        user_set_interests(user=form.instance, interests=tags, actor=request.user)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        return None

    def user_change_password(self, request, id, form_url=""):
        # Django builds the form as self.change_password_form(user, data): bind the acting
        # admin on a per-request copy (the ModelAdmin instance is shared between threads).
        per_request = copy.copy(self)
        per_request.change_password_form = partial(ServicePasswordChangeForm, actor=request.user)
        return DjangoUserAdmin.user_change_password(per_request, request, id, form_url)


class EntryPlanForm(forms.ModelForm):
    """Checked by the plan services' own rules before anything is saved."""

    class Meta:
        model = EntryPlan
        fields = list(PLAN_FIELDS)

    def clean(self):
        cleaned = super().clean()
        if self.has_changed() and not self.errors:
            values = {name: cleaned.get(name) for name in PLAN_FIELDS}
            plan = self.instance if self.instance.pk else None
            try:
                entry_plan_check(community_id=self.instance.community_id, values=values, plan=plan)
            except ApplicationError as error:
                add_service_errors(self, error)
        return cleaned


class EntryPlanFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        names = [f.cleaned_data.get("name") for f in self.forms if f.has_changed() or f.instance.pk]
        names = [name for name in names if name]
        if len(names) != len(set(names)):
            raise forms.ValidationError(_("Plan names must be different."))


class EntryPlanInline(ScopedInline):
    """Plans are never deleted (orders point at them): untick "active" to stop offering one."""

    model = EntryPlan
    form = EntryPlanForm
    formset = EntryPlanFormSet
    fields = list(PLAN_FIELDS)
    can_delete = False


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = list(TIER_FIELDS)

    def clean(self):
        cleaned = super().clean()
        if self.has_changed() and not self.errors:
            values = {name: cleaned.get(name) for name in TIER_FIELDS}
            tier = self.instance if self.instance.pk else None
            try:
                tier_check(community_id=self.instance.community_id, values=values, tier=tier)
            except ApplicationError as error:
                add_service_errors(self, error)
        return cleaned


class TierInline(ScopedInline):
    model = Tier
    form = TierForm
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
        error_messages = {"slug": {"unique": _("This address (slug) is taken. Choose another one.")}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["attributes_text"].initial = ", ".join(self.instance.attribute_tags)

    def clean_wechatpay_sub_mchid(self) -> str:
        value = (self.cleaned_data.get("wechatpay_sub_mchid") or "").strip()
        if value and not re.fullmatch(r"\d{8,32}", value):
            raise forms.ValidationError(_("Enter the sub-merchant number WeChat Pay gave you: digits only."))
        return value

    def clean(self):
        """Both commission levels together within ``COMMISSION_RATE_CEILING``, next to both fields."""
        cleaned = super().clean()
        level1, level2 = cleaned.get("referral_level1_percent"), cleaned.get("referral_level2_percent")
        if level1 is not None and level2 is not None:
            try:
                commission_rates_check(level1=level1, level2=level2)
            except CommissionRateCeilingExceeded as error:
                self.add_error("referral_level1_percent", str(error.message))
                self.add_error("referral_level2_percent", str(error.message))
        return cleaned

    def attribute_list(self) -> list[str]:
        text = self.cleaned_data.get("attributes_text", "")
        return [part for part in text.replace("，", ",").replace("、", ",").split(",") if part.strip()]


@admin.register(Community)
class CommunityAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    """Saved through ``community_create`` / ``community_update`` and the plan and tier services."""

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
                    "return_address",
                    "commission_on_entry_orders",
                    "points_per_yuan",
                ]
            },
        ),
        (
            _("Payments"),
            {
                "fields": ["payment_provider", "wechatpay_sub_mchid"],
                "description": _(
                    "WeChat Pay partner mode: members can pay by WeChat Pay only once the "
                    "sub-merchant number (特约商户号) is set; the takings land in that merchant account."
                ),
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
        """The owner is chosen once, by a superuser founding for someone; the address never changes."""
        if obj is not None:
            return ["owner", "slug"]
        return [] if request.user.is_superuser else ["owner"]

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields

    def has_add_permission(self, request, *args):
        """Who may found a community here: superusers, holders of the "add community" permission, owners.

        Finance staff and other staff users manage no community and may not
        make one (members found theirs through the owner API).
        """
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and (
                user.is_superuser
                or user.has_perm("members.add_community")
                or bool(managed_community_ids(request))
            )
        )

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self.has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # orders, payments and the audit trail hang on a community

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in SETTINGS_FIELDS if name in form.cleaned_data}
        attributes = form.attribute_list()
        if change:
            changed = {name: value for name, value in values.items() if name in form.changed_data}
            community_update(actor=request.user, community=obj, attributes=attributes, **changed)
            return
        owner = form.cleaned_data["owner"] if request.user.is_superuser else request.user
        name = values.pop("name")
        community = community_create(
            actor=request.user,
            owner=owner,
            slug=form.cleaned_data["slug"],
            name=name,
            attributes=attributes,
            **values,
        )
        # The inlines are bound to ``obj``: point it at the saved row so their rows attach to it.
        obj.pk, obj.owner, obj.created_at = community.pk, community.owner, community.created_at
        obj._state.adding, obj._state.db = False, community._state.db

    def save_formset(self, request, form, formset, change):
        """Plans and tiers through their services; what changed is recorded for the admin's history."""
        savers = {EntryPlan: self._save_plan, Tier: self._save_tier}
        saver = savers.get(formset.model)
        if saver is None:
            super().save_formset(request, form, formset, change)
            return
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row in formset.deleted_forms:
            if row.instance.pk is not None:
                tier_delete(actor=request.user, tier=row.instance)
                formset.deleted_objects.append(row.instance)
        for row in formset.forms:
            if row in formset.deleted_forms or not row.has_changed():
                continue
            saved = saver(request, formset.instance, row)
            if row.instance.pk is None:
                formset.new_objects.append(saved)
            else:
                formset.changed_objects.append((saved, row.changed_data))

    def _save_plan(self, request, community, row):
        if row.instance.pk is None:
            values = {name: row.cleaned_data[name] for name in PLAN_FIELDS}
            return entry_plan_create(actor=request.user, community=community, **values)
        changed = {name: row.cleaned_data[name] for name in row.changed_data if name in PLAN_FIELDS}
        return entry_plan_update(actor=request.user, plan=row.instance, **changed)

    def _save_tier(self, request, community, row):
        if row.instance.pk is None:
            values = {name: row.cleaned_data[name] for name in TIER_FIELDS}
            return tier_create(actor=request.user, community=community, **values)
        changed = {name: row.cleaned_data[name] for name in row.changed_data if name in TIER_FIELDS}
        return tier_update(actor=request.user, tier=row.instance, **changed)


MEMBERSHIP_EDITABLE = ["role", "status", "tier", "referred_by", "expires_at"]


class MembershipForm(forms.ModelForm):
    """Owners change what a member is in their community; the services' rules are checked here first."""

    class Meta:
        model = Membership
        fields = MEMBERSHIP_EDITABLE

    def clean(self):
        cleaned = super().clean()
        current = self.instance  # still the stored row: Django copies cleaned values onto it after clean()
        checks = {
            "status": lambda value: membership_services.membership_status_check(
                membership=current, status=value
            ),
            "role": lambda value: membership_services.membership_role_check(membership=current, role=value),
            "tier": lambda value: membership_services.membership_tier_check(membership=current, tier=value),
            "referred_by": lambda value: membership_services.membership_referrer_check(
                membership=current, referrer=value
            ),
        }
        for name, check in checks.items():
            if name in self.changed_data and name in cleaned:
                try:
                    check(cleaned[name])
                except ApplicationError as error:
                    self.add_error(name, str(error.message))
        return cleaned


@admin.register(Membership)
class MembershipAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    """Nobody adds memberships here (people join themselves); owners change role, status, tier, referrer.

    The user is shown, never chosen: no lookup of arbitrary accounts.
    """

    form = MembershipForm
    scoped_foreign_keys = {"tier": "community", "referred_by": "community"}
    list_display = ["nickname", "community", "role", "status", "tier", "points", "joined_at", "expires_at"]
    list_filter = ["status", "role", ManagedTierFilter, "joined_at", ManagedCommunityFilter]
    search_fields = ["user__nickname", "user__username", "referral_code"]
    list_select_related = ["user", "community", "tier"]
    fields = ["user", "community", *MEMBERSHIP_EDITABLE, "points", "referral_code", "joined_at"]
    readonly_fields = ["user", "community", "points", "referral_code", "joined_at"]
    actions = ["approve"]
    date_hierarchy = "joined_at"

    @admin.display(description=_("nickname"), ordering="user__nickname")
    def nickname(self, obj):
        return obj.user.nickname or obj.user.username

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # ban or remove instead: orders, points and commissions hang on a membership

    def save_model(self, request, obj, form, change):
        """Each changed field through its service, in this order: status, role, tier, referrer, expiry."""
        membership = Membership.objects.get(pk=obj.pk)
        data, changed = form.cleaned_data, set(form.changed_data)
        setters = [
            ("status", membership_services.membership_set_status, "status"),
            ("role", membership_services.membership_set_role, "role"),
            ("tier", membership_services.membership_set_tier, "tier"),
            ("referred_by", membership_services.membership_set_referrer, "referrer"),
            ("expires_at", membership_services.membership_set_expiry, "expires_at"),
        ]
        for field, setter, argument in setters:
            if field in changed:
                membership = setter(actor=request.user, membership=membership, **{argument: data[field]})

    @admin.action(description=_("Approve selected memberships"))
    def approve(self, request, queryset):
        approved = 0
        for membership in queryset.filter(status=Membership.Status.PENDING_APPROVAL).select_related(
            "community"
        ):
            try:
                membership_services.membership_approve(
                    actor=request.user, membership_id=membership.pk, community=membership.community
                )
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


INVITE_EDITABLE = ["max_uses", "expires_at", "is_active"]


class InviteCodeForm(forms.ModelForm):
    """A new code comes generated (the owner may replace it with a word of their own)."""

    class Meta:
        model = InviteCode
        fields = ["community", "code", *INVITE_EDITABLE]
        help_texts = {"code": _("Generated for you; change it to a word of your own if you like.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "code" in self.fields and not self.instance.pk and not self.is_bound:
            self.fields["code"].initial = invite_code_suggest()

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            values = {
                name: cleaned.get(name, getattr(self.instance, name)) for name in ["code", *INVITE_EDITABLE]
            }
            try:
                invite_code_check(values=values, invite=self.instance if self.instance.pk else None)
            except ApplicationError as error:
                add_service_errors(self, error)
        return cleaned


@admin.register(InviteCode)
class InviteCodeAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    """Created and changed through the invite services; a code is switched off, never deleted."""

    form = InviteCodeForm
    scoped_foreign_keys = {"community": "self"}
    list_display = ["code", "community", "uses", "max_uses", "expires_at", "is_active"]
    list_filter = ["is_active", ManagedCommunityFilter]
    search_fields = ["code"]

    def get_readonly_fields(self, request, obj=None):
        return ["community", "code", "uses"] if obj is not None else ["uses"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changed = {name: data[name] for name in INVITE_EDITABLE if name in form.changed_data}
            invite_code_update(actor=request.user, invite=obj, **changed)
            return
        invite = invite_code_create(
            actor=request.user,
            community=data["community"],
            code=data["code"],
            **{name: data[name] for name in INVITE_EDITABLE},
        )
        obj.pk, obj._state.adding = invite.pk, False


class PointsCommunityFilter(ManagedCommunityFilter):
    community_lookup = "membership__community_id"


@admin.register(PointsEntry)
class PointsEntryAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    """The ledger is append-only: read it here; points change through services."""

    community_field = "membership__community"
    list_display = ["membership", "delta", "reason", "created_at"]
    list_filter = ["created_at", PointsCommunityFilter]
    search_fields = ["membership__user__nickname", "reason", "idempotency_key"]
    list_select_related = ["membership__user", "membership__community"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
