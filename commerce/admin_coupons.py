"""Coupon pages for owners and operators: the coupons of their communities, giving them out, members' coupons.

Every write goes through ``commerce.services.coupons``. Giving coupons to
members or tiers is a two-step page: choose, then confirm what will happen
(who gets one, who is at the per-member limit, what the total limit leaves).
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce.admin_reports import FinanceReadOnlyMixin
from commerce.models import Coupon, MemberCoupon
from commerce.pricing import money
from commerce.services.coupons import (
    COUPON_FIELDS,
    coupon_check_values,
    coupon_create,
    coupon_issue,
    coupon_issue_plan,
    coupon_normalise,
    coupon_update,
    member_coupon_restore,
    member_coupon_revoke,
    members_of_tiers,
)
from members.admin_scoping import CommunityScopedAdminMixin, ManagedCommunityFilter
from members.models import Membership, Tier
from shequn_backend.errors import ApplicationError


class CouponForm(forms.ModelForm):
    class Meta:
        model = Coupon
        fields = ["community", *COUPON_FIELDS]

    def clean(self):
        cleaned = super().clean()
        cleaned.update(coupon_normalise(cleaned))  # the other kind's value is dropped, the code upper-cased
        for field, problems in coupon_check_values(values=cleaned).items():
            for problem in problems:
                self.add_error(field if field in self.fields else None, problem)
        return cleaned


class IssueForm(forms.Form):
    """Whom to give the coupon: tiers and/or chosen members (active members of its community)."""

    tiers = forms.ModelMultipleChoiceField(
        label=_("tiers"), queryset=Tier.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    members = forms.ModelMultipleChoiceField(
        label=_("members"),
        queryset=Membership.objects.none(),
        required=False,
        help_text=_("Hold Ctrl (⌘ on a Mac) to choose several."),
    )
    # One key per confirmation page: submitting it twice gives the coupons once.
    key = forms.CharField(widget=forms.HiddenInput, max_length=40)

    def __init__(self, *args, coupon: Coupon, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].initial = uuid.uuid4().hex
        self.fields["tiers"].queryset = Tier.objects.filter(community_id=coupon.community_id).order_by(
            "level"
        )
        self.fields["members"].queryset = (
            Membership.objects.filter(community_id=coupon.community_id, status=Membership.Status.ACTIVE)
            .select_related("user")
            .order_by("user__username")
        )
        self.fields["members"].label_from_instance = lambda m: m.user.nickname or m.user.get_username()

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("tiers") and not cleaned.get("members"):
            raise forms.ValidationError(_("Choose at least one tier or member."))
        return cleaned

    def membership_ids(self, coupon: Coupon) -> list[int]:
        ids = {m.pk for m in self.cleaned_data["members"]}
        tiers = [tier.pk for tier in self.cleaned_data["tiers"]]
        return sorted(ids | set(members_of_tiers(community_id=coupon.community_id, tier_ids=tiers)))


@admin.register(Coupon)
class CouponAdmin(FinanceReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    form = CouponForm
    scoped_foreign_keys = {"community": "self"}
    list_display = ["name", "community", "terms", "scope", "trigger", "given_out", "valid_until", "is_active"]
    list_filter = ["kind", "scope", "trigger", "is_active", ManagedCommunityFilter]
    search_fields = ["name", "code"]
    list_select_related = ["community"]
    readonly_fields = ["issued_count", "issue_link"]
    fieldsets = [
        (None, {"fields": ["community", "name", "is_active", "issue_link"]}),
        (
            _("Discount"),
            {"fields": ["kind", "amount_off", "percent_off", "max_discount", "min_spend", "scope"]},
        ),
        (
            _("Validity and limits"),
            {"fields": ["valid_from", "valid_until", "total_limit", "per_member_limit"]},
        ),
        (_("How members get it"), {"fields": ["trigger", "code", "return_on_refund", "issued_count"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        """A coupon stays in its community."""
        return [*self.readonly_fields, "community"] if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        """Members hold coupons: switch one off instead of deleting it."""
        return False

    @admin.display(description=_("discount"))
    def terms(self, coupon):
        if coupon.kind == Coupon.Kind.AMOUNT:
            text = _("¥%(off)s off over ¥%(min)s") % {
                "off": money(coupon.amount_off),
                "min": money(coupon.min_spend),
            }
        else:
            text = _("%(percent)s%% off") % {"percent": format(coupon.percent_off.normalize(), "f")}
            if coupon.max_discount is not None:
                text = _("%(text)s, at most ¥%(cap)s") % {"text": text, "cap": money(coupon.max_discount)}
        return text

    @admin.display(description=_("given out"), ordering="issued_count")
    def given_out(self, coupon):
        if coupon.total_limit is None:
            return coupon.issued_count
        return f"{coupon.issued_count} / {coupon.total_limit}"

    @admin.display(description=_("give to members"))
    def issue_link(self, coupon):
        if coupon is None or coupon.pk is None:
            return _("Save the coupon first, then give it to members or tiers here.")
        url = reverse("admin:commerce_coupon_issue", args=[coupon.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Give to members or tiers…"))

    def save_model(self, request, obj, form, change):
        values = {field: form.cleaned_data[field] for field in COUPON_FIELDS if field in form.cleaned_data}
        if change:
            saved = coupon_update(actor=request.user, coupon=Coupon.objects.get(pk=obj.pk), **values)
        else:
            saved = coupon_create(actor=request.user, community=form.cleaned_data["community"], **values)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A refusal the form could not foresee (a race) is shown, not a 500."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            problems = [str(text) for texts in (exc.fields or {}).values() for text in texts]
            self.message_user(request, " ".join(problems) or str(exc.message), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_urls(self):
        view = self.admin_site.admin_view(self.issue_view)
        return [path("<int:coupon_id>/issue/", view, name="commerce_coupon_issue"), *super().get_urls()]

    def issue_view(self, request, coupon_id: int):
        """Choose tiers and members, see what will happen, confirm."""
        coupon = self.get_queryset(request).filter(pk=coupon_id).first()
        if coupon is None or not self.has_change_permission(request, coupon):
            raise Http404
        form = IssueForm(request.POST or None, coupon=coupon)
        plan = None
        if request.method == "POST" and form.is_valid():
            ids = form.membership_ids(coupon)
            if "confirm" in request.POST:
                given = coupon_issue(
                    actor=request.user, coupon=coupon, membership_ids=ids, issue_key=form.cleaned_data["key"]
                )
                message = ngettext(
                    "%(count)d member got the coupon “%(name)s”.",
                    "%(count)d members got the coupon “%(name)s”.",
                    len(given),
                ) % {"count": len(given), "name": coupon.name}
                self.message_user(request, message, messages.SUCCESS if given else messages.WARNING)
                return HttpResponseRedirect(reverse("admin:commerce_coupon_change", args=[coupon.pk]))
            plan = coupon_issue_plan(coupon=coupon, membership_ids=ids)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Give “%(name)s” to members") % {"name": coupon.name},
            "opts": self.opts,
            "coupon": coupon,
            "form": form,
            "plan": plan,
            "receivers": None if plan is None else _receivers_shown(plan),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/commerce/coupon/issue.html", context)


def _receivers_shown(plan) -> int:
    """How many will get one: the receivers, as far as the total limit goes."""
    if plan.left is None:
        return len(plan.receivers)
    return min(len(plan.receivers), max(plan.left, 0))


@admin.register(MemberCoupon)
class MemberCouponAdmin(FinanceReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    community_field = "coupon__community"
    list_display = ["coupon", "member", "status", "source", "order_link", "issued_at", "used_at"]
    list_filter = ["status", "source", ("coupon__community", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["coupon__name", "membership__user__username", "membership__user__nickname"]
    list_select_related = ["coupon", "membership__user", "order"]
    readonly_fields = ["coupon", "membership", "status", "source", "order", "issued_at", "used_at"]
    fields = readonly_fields
    actions = ["revoke", "restore"]

    def has_add_permission(self, request, *args):
        return False  # given out from the coupon's page

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)  # the actions; rows read-only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("member"), ordering="membership__user__username")
    def member(self, grant):
        return grant.membership.user.nickname or grant.membership.user.get_username()

    @admin.display(description=_("order"))
    def order_link(self, grant):
        if grant.order_id is None:
            return "-"
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:commerce_order_change", args=[grant.order_id]),
            grant.order_id,
        )

    def _each(self, request, queryset, service, done_message) -> None:
        done = 0
        for grant in queryset.select_related("coupon").order_by("pk"):
            try:
                service(actor=request.user, member_coupon=grant)
            except ApplicationError as exc:
                self.message_user(request, f"{grant}: {exc.message}", messages.WARNING)
                continue
            done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("Revoke the selected coupons (available ones only)"))
    def revoke(self, request, queryset):
        self._each(
            request,
            queryset,
            member_coupon_revoke,
            lambda n: ngettext("%(count)d coupon revoked.", "%(count)d coupons revoked.", n) % {"count": n},
        )

    @admin.action(description=_("Give back the selected coupons of fully refunded orders"))
    def restore(self, request, queryset):
        self._each(
            request,
            queryset,
            member_coupon_restore,
            lambda n: ngettext(
                "%(count)d coupon given back to its member.",
                "%(count)d coupons given back to their members.",
                n,
            )
            % {"count": n},
        )
