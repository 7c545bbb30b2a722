"""Withdrawals (提现) in the admin: finance staff approve or reject them, after a confirmation page.

Only finance staff (the 财务 group) and superusers see the list; approving or
rejecting needs ``commerce.review_withdrawal``. An approved withdrawal is sent
to WeChat Pay's merchant transfer at once; the member then confirms it in the
mini-program. Everything goes through ``commerce.services.withdrawals``.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce.admin import ReadOnlyMixin, yuan, yuan_column
from commerce.models import Withdrawal
from commerce.services.withdrawals import (
    TRANSFER_STATES,
    withdrawal_approve,
    withdrawal_available,
    withdrawal_reject,
    withdrawal_transfer,
)
from shequn_backend.errors import ApplicationError

REVIEW_PERMISSION = "commerce.review_withdrawal"


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=_("Note"),
        max_length=200,
        required=False,
        help_text=_("Kept with the decision. Say why when you reject: the member is told."),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    key = forms.CharField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args, note_required: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["note"].required = note_required


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "out_bill_no",
        "member",
        "amount_yuan",
        "fee_yuan",
        "status",
        "wechat_state",
        "created_at",
        "reviewed_by",
        "finished_at",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["=id", "out_bill_no", "transfer_bill_no", "user__username", "user__nickname"]
    list_select_related = ["user", "reviewed_by"]
    date_hierarchy = "created_at"
    actions = ["approve_withdrawals", "reject_withdrawals"]
    fields = [
        "user",
        "amount",
        "fee",
        "currency",
        "status",
        "out_bill_no",
        "transfer_bill_no",
        "wechat_state",
        "fail_reason",
        "reviewed_by",
        "reviewed_at",
        "review_note",
        "created_at",
        "transfer_started_at",
        "finished_at",
        "ledger",
    ]
    readonly_fields = fields

    amount_yuan = yuan_column("amount", _("amount"))
    fee_yuan = yuan_column("fee", _("fee"))

    def has_module_permission(self, request):
        user = request.user
        return user.is_active and user.is_staff and user.has_perm("commerce.view_withdrawal")

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_review_permission(self, request):
        return self.has_module_permission(request) and request.user.has_perm(REVIEW_PERMISSION)

    @admin.display(description=_("member"), ordering="user__username")
    def member(self, withdrawal):
        return withdrawal.user.nickname or withdrawal.user.get_username()

    @admin.display(description=_("commission ledger"))
    def ledger(self, withdrawal):
        rows = (
            (entry.beneficiary.community.name, entry.get_kind_display(), yuan(entry.amount), entry.created_at)
            for entry in withdrawal.entries.select_related("beneficiary__community").order_by("pk")
        )
        return format_html_join("", "<div>{} · {} {} ({})</div>", rows) or "-"

    def _review(self, request, queryset, *, approve: bool):
        """The confirmation page, then the decision for each withdrawal still waiting for one."""
        withdrawals = list(queryset.select_related("user").order_by("pk"))
        waiting = [w for w in withdrawals if w.status == Withdrawal.Status.REQUESTED]
        if not waiting:
            self.message_user(
                request,
                _(
                    "None of the selected withdrawals is waiting for review: "
                    "only requested ones can be decided."
                ),
                messages.WARNING,
            )
            return None
        form = ReviewForm(request.POST if "confirm" in request.POST else None, note_required=not approve)
        if form.is_valid():
            self._decide(request, waiting, note=form.cleaned_data["note"], approve=approve)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Approve withdrawals: check what money will move")
            if approve
            else _("Reject withdrawals: the money goes back to the members' balances"),
            "opts": self.opts,
            "form": form,
            "approve": approve,
            "action": "approve_withdrawals" if approve else "reject_withdrawals",
            "rows": [
                (
                    w,
                    yuan(w.amount),
                    yuan(w.fee),
                    yuan(w.transfer_amount),
                    yuan(withdrawal_available(user_id=w.user_id)),
                )
                for w in waiting
            ],
            "skipped": [w for w in withdrawals if w.status != Withdrawal.Status.REQUESTED],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/commerce/withdrawal/review_confirmation.html", context)

    def _decide(self, request, withdrawals, *, note: str, approve: bool) -> None:
        done = 0
        for withdrawal in withdrawals:
            try:
                if approve:
                    withdrawal_approve(actor=request.user, withdrawal_id=withdrawal.pk, note=note)
                    withdrawal = withdrawal_transfer(withdrawal_id=withdrawal.pk, actor=request.user)
                else:
                    withdrawal = withdrawal_reject(actor=request.user, withdrawal_id=withdrawal.pk, note=note)
            except ApplicationError as exc:
                self.message_user(
                    request,
                    _("Withdrawal %(no)s: %(error)s") % {"no": withdrawal.out_bill_no, "error": exc.message},
                    messages.WARNING,
                )
                continue
            done += 1
            refused_for_now = withdrawal.wechat_state and withdrawal.wechat_state not in TRANSFER_STATES
            if approve and withdrawal.status == Withdrawal.Status.TRANSFERRING and refused_for_now:
                self.message_user(
                    request,
                    _(
                        "Withdrawal %(no)s is approved, but WeChat Pay refused the transfer for now "
                        "(%(code)s; NOT_ENOUGH means the WeChat Pay operating account must be topped up). "
                        "Do not pay it another way: the sync_withdrawals job sends the same transfer again."
                    )
                    % {"no": withdrawal.out_bill_no, "code": withdrawal.wechat_state},
                    messages.WARNING,
                )
            elif approve and withdrawal.status == Withdrawal.Status.TRANSFERRING:
                self.message_user(
                    request,
                    _(
                        "Withdrawal %(no)s is approved, but WeChat Pay has not confirmed the transfer yet. "
                        "Do not pay it another way: the sync_withdrawals job asks WeChat Pay again."
                    )
                    % {"no": withdrawal.out_bill_no},
                    messages.WARNING,
                )
            elif approve and withdrawal.status == Withdrawal.Status.FAILED:
                self.message_user(
                    request,
                    _(
                        "Withdrawal %(no)s: WeChat Pay refused the transfer (%(reason)s); the money is "
                        "back in the member's balance and they may request again."
                    )
                    % {"no": withdrawal.out_bill_no, "reason": withdrawal.fail_reason},
                    messages.ERROR,
                )
        if done:
            message = (
                ngettext(
                    "%(count)d withdrawal approved and sent to WeChat Pay: the member confirms it in the "
                    "mini-program.",
                    "%(count)d withdrawals approved and sent to WeChat Pay: the members confirm them in the "
                    "mini-program.",
                    done,
                )
                if approve
                else ngettext(
                    "%(count)d withdrawal rejected; the money is back in the member's balance.",
                    "%(count)d withdrawals rejected; the money is back in the members' balances.",
                    done,
                )
            )
            self.message_user(request, message % {"count": done}, messages.SUCCESS)

    @admin.action(
        description=_("Approve the selected withdrawals and pay them by WeChat Pay"), permissions=["review"]
    )
    def approve_withdrawals(self, request, queryset):
        return self._review(request, queryset, approve=True)

    @admin.action(description=_("Reject the selected withdrawals (asks why first)"), permissions=["review"])
    def reject_withdrawals(self, request, queryset):
        return self._review(request, queryset, approve=False)
