"""Tickets in the admin: the scoped, read-only list and the check-in (核销) screen a phone can use.

Tickets change only through ``ticket_check_in``: the screen (one big code
field) and the list's action call it; issuing and refunding follow payments
and refunds.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce.models import Ticket
from commerce.services.tickets import MAX_CODE_INPUT, ticket_check_in
from members.admin_scoping import CommunityScopedAdminMixin, ManagedCommunityFilter, managed_community_ids
from members.models import Community
from shequn_backend.errors import ApplicationError


class CheckInForm(forms.Form):
    community = forms.ModelChoiceField(label=_("community"), queryset=Community.objects.none())
    code = forms.CharField(
        label=_("ticket code"),
        max_length=MAX_CODE_INPUT,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "enterkeyhint": "go",
                "class": "check-in-code",
            }
        ),
    )

    def __init__(self, *args, communities, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["community"].queryset = communities
        if len(communities) == 1:
            self.fields["community"].initial = communities[0].pk
            self.fields["community"].widget = forms.HiddenInput()


@admin.register(Ticket)
class TicketAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/commerce/ticket/change_list.html"
    list_display = [
        "code",
        "product",
        "starts_at",
        "buyer",
        "status",
        "checked_in_at",
        "checked_in_by",
        "order",
    ]
    list_filter = ["status", ManagedCommunityFilter, "created_at"]
    search_fields = ["=code", "buyer__username", "buyer__nickname", "=order__id", "product__title"]
    list_select_related = ["product", "buyer", "checked_in_by", "order"]
    date_hierarchy = "created_at"
    actions = ["check_in_selected"]
    fields = [
        "code",
        "community",
        "product",
        "order",
        "seat",
        "buyer",
        "status",
        "checked_in_at",
        "checked_in_by",
        "refunded_at",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("starts at"), ordering="product__starts_at")
    def starts_at(self, ticket):
        return ticket.product.starts_at

    @admin.action(description=_("Check in the selected tickets"))
    def check_in_selected(self, request, queryset):
        done = 0
        for ticket in queryset.select_related("community").order_by("pk"):
            try:
                ticket_check_in(actor=request.user, community=ticket.community, code=ticket.code)
            except ApplicationError as exc:
                self.message_user(request, f"{ticket.code}: {exc.message}", messages.WARNING)
                continue
            done += 1
        if done:
            message = ngettext("%(count)d ticket checked in.", "%(count)d tickets checked in.", done)
            self.message_user(request, message % {"count": done}, messages.SUCCESS)

    def get_urls(self):
        check_in = path(
            "check-in/", self.admin_site.admin_view(self.check_in_view), name="commerce_ticket_check_in"
        )
        return [check_in, *super().get_urls()]

    def _communities(self, request):
        communities = Community.objects.order_by("name")
        if not request.user.is_superuser:
            communities = communities.filter(pk__in=managed_community_ids(request))
        return communities

    def check_in_view(self, request):
        """One big code field: type (or paste from a scanner) the code, press Enter, read the answer."""
        communities = self._communities(request)
        if not communities.exists():
            raise PermissionDenied
        form = CheckInForm(request.POST or None, communities=communities)
        outcome = None
        if request.method == "POST" and form.is_valid():
            outcome = self._check_in(request, form)
            if outcome["ok"]:
                form = CheckInForm(
                    initial={"community": form.cleaned_data["community"].pk}, communities=communities
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Check in tickets"),
            "form": form,
            "outcome": outcome,
            "list_url": reverse("admin:commerce_ticket_changelist"),
        }
        return TemplateResponse(request, "admin/commerce/ticket/check_in.html", context)

    def _check_in(self, request, form) -> dict:
        try:
            ticket = ticket_check_in(
                actor=request.user,
                community=form.cleaned_data["community"],
                code=form.cleaned_data["code"],
            )
        except ApplicationError as exc:
            return {"ok": False, "code": exc.code, "message": exc.message}
        return {
            "ok": True,
            "message": _("Checked in"),
            "ticket": ticket,
            "summary": format_html(
                "{} · {} · {}",
                ticket.product.title,
                ticket.buyer.nickname or ticket.buyer.username,
                ticket.code,
            ),
        }
