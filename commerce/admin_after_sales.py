"""After-sale requests (售后) in the admin: owners approve, reject or receive returns, after confirming.

Scoped to the communities the signed-in user manages; finance reads every
community and acts on none. Every decision goes through the after-sale
services (which audit it); money moves only after the owner confirms.
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce.admin import (
    OrderCommunityFilter,
    ParentScopedInline,
    ReadOnlyMixin,
    buyer_name,
    yuan,
    yuan_column,
)
from commerce.admin_reports import FinanceReadOnlyMixin
from commerce.errors import PaymentProviderUnavailable
from commerce.models import AfterSale, AfterSaleLine
from commerce.services.after_sales import after_sale_approve, after_sale_receive, after_sale_reject
from members.admin_scoping import CommunityScopedAdminMixin
from shequn_backend.errors import ApplicationError

S = AfterSale.Status


class AfterSaleLineInline(FinanceReadOnlyMixin, ReadOnlyMixin, ParentScopedInline):
    model = AfterSaleLine
    community_field = "after_sale__order__community"
    parent_community_field = "order__community"
    fields = ["line", "quantity", "amount"]
    readonly_fields = fields


class DecisionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_("Shown to the member."),
    )
    restock = forms.BooleanField(
        label=_("Put the returned goods back into stock"),
        required=False,
        help_text=_("Tick when the goods came back in a state you can sell again."),
    )

    def __init__(self, *args, reason_required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = reason_required


# What each action does: the statuses it acts on, the page's title and button, the service.
DECISIONS = {
    "approve": {
        "statuses": (S.REQUESTED,),
        "title": _("Approve after-sale requests: check what will happen"),
        "button": _("Yes, approve"),
    },
    "reject": {
        "statuses": (S.REQUESTED, S.AWAITING_RETURN),
        "title": _("Reject after-sale requests: tell the member why"),
        "button": _("Yes, reject"),
    },
    "receive": {
        "statuses": (S.AWAITING_RETURN,),
        "title": _("The returned goods came back: check the refunds"),
        "button": _("Yes, the goods came back: refund"),
    },
}


def _outcome(after_sale: AfterSale, decision: str) -> str:
    """What confirming will do to this request, in the owner's words."""
    values = {"amount": yuan(after_sale.amount), "buyer": buyer_name(after_sale.order)}
    if decision == "reject":
        return _("The request is closed; no money moves.")
    if decision == "receive" or after_sale.type == AfterSale.Type.REFUND_ONLY:
        return _("%(amount)s goes back to %(buyer)s the way they paid.") % values
    return _(
        "%(buyer)s is asked to send the goods back to the community's return address; no money moves yet."
    ) % (values)


@admin.register(AfterSale)
class AfterSaleAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    community_field = "order__community"
    inlines = [AfterSaleLineInline]
    list_display = [
        "id",
        "order",
        "type",
        "status",
        "amount_yuan",
        "requested_by",
        "tracking_no",
        "created_at",
    ]
    list_filter = ["status", "type", "created_at", OrderCommunityFilter]
    search_fields = ["=id", "=order__id", "tracking_no", "requested_by__username"]
    list_select_related = ["order", "order__buyer", "requested_by"]
    date_hierarchy = "created_at"
    actions = ["approve_after_sales", "reject_after_sales", "receive_after_sales"]
    readonly_fields = [
        "order",
        "type",
        "status",
        "amount",
        "currency",
        "reason",
        "decision_reason",
        "return_address",
        "carrier",
        "tracking_no",
        "restocked",
        "requested_by",
        "decided_by",
        "decided_at",
        "returned_at",
        "received_at",
        "created_at",
    ]
    fields = readonly_fields

    amount_yuan = yuan_column("amount", _("amount"))

    @admin.action(description=_("Approve the selected after-sale requests (confirm first)"))
    def approve_after_sales(self, request, queryset):
        return self._decide(request, queryset, "approve")

    @admin.action(description=_("Reject the selected after-sale requests (asks a reason first)"))
    def reject_after_sales(self, request, queryset):
        return self._decide(request, queryset, "reject")

    @admin.action(description=_("The returned goods came back: refund the selected requests (confirm first)"))
    def receive_after_sales(self, request, queryset):
        return self._decide(request, queryset, "receive")

    def _decide(self, request, queryset, decision: str):
        """A confirmation page listing what will happen to each request; the services run on confirm."""
        rows = list(queryset.select_related("order", "order__buyer").order_by("pk"))
        statuses = DECISIONS[decision]["statuses"]
        actionable = [row for row in rows if row.status in statuses and row.received_at is None]
        if decision == "receive":
            actionable = [row for row in actionable if row.tracking_no]
        if not actionable:
            self.message_user(request, self._nothing_to_do(decision), messages.WARNING)
            return None
        confirmed = "confirm" in request.POST
        form = DecisionForm(request.POST if confirmed else None, reason_required=decision == "reject")
        if confirmed and form.is_valid():
            self._apply(request, actionable, decision, form.cleaned_data)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": DECISIONS[decision]["title"],
            "button": DECISIONS[decision]["button"],
            "opts": self.opts,
            "form": form,
            "decision": decision,
            "action": f"{decision}_after_sales",
            "rows": [(row, yuan(row.amount), _outcome(row, decision)) for row in actionable],
            "skipped": [row for row in rows if row not in actionable],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/commerce/aftersale/decision_confirmation.html", context)

    @staticmethod
    def _nothing_to_do(decision: str) -> str:
        if decision == "receive":
            return _(
                "None of the selected requests is a return whose tracking number the member has posted: "
                "wait until the goods are on their way back."
            )
        return _(
            "None of the selected requests can be decided now: only requested ones "
            "(and returns not received yet) can."
        )

    def _apply(self, request, rows, decision: str, data: dict) -> None:
        done = 0
        for row in rows:
            try:
                if decision == "approve":
                    after_sale_approve(actor=request.user, after_sale_id=row.pk, reason=data["reason"])
                elif decision == "reject":
                    after_sale_reject(actor=request.user, after_sale_id=row.pk, reason=data["reason"])
                else:
                    after_sale_receive(
                        actor=request.user,
                        after_sale_id=row.pk,
                        restock=data["restock"],
                        reason=data["reason"],
                    )
            except PaymentProviderUnavailable:
                message = _(
                    "After-sale #%(id)s: the payment service did not take the refund now. It is kept; "
                    "run the same action again in a few minutes."
                ) % {"id": row.pk}
                self.message_user(request, message, messages.ERROR)
                continue
            except ApplicationError as exc:
                message = _("After-sale #%(id)s: %(error)s") % {"id": row.pk, "error": exc.message}
                self.message_user(request, message, messages.ERROR)
                continue
            done += 1
        if done:
            message = ngettext(
                "%(count)d after-sale request updated.", "%(count)d after-sale requests updated.", done
            ) % {"count": done}
            self.message_user(request, message, messages.SUCCESS)
