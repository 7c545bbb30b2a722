"""Admin for owners, operators and finance: scoped to the communities the signed-in user manages.

Money rows (orders, payments, refunds, webhook deliveries) are read-only here:
they change through services, which the refund action calls.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Min, Sum
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce.admin_reports import FinanceReadOnlyMixin, finance_reads_all
from commerce.models import Category, Order, OrderLine, Payment, Product, Refund, Sku, WebhookEvent
from commerce.services.catalog import product_saved_announce
from commerce.services.orders import order_advance
from commerce.services.refunds import refund_request
from members.admin_scoping import CommunityScopedAdminMixin, ScopedInline, managed_community_ids
from members.models import Community, Tier
from members.services.users import normalise_tags
from shequn_backend.errors import ApplicationError


class ManagedCommunityFilter(admin.SimpleListFilter):
    """Filter by community, offering only the communities the user may see (not every name)."""

    title = _("community")
    parameter_name = "community"
    community_lookup = "community_id"

    def lookups(self, request, model_admin):
        communities = Community.objects.order_by("name")
        if not (request.user.is_superuser or finance_reads_all(request)):
            communities = communities.filter(pk__in=managed_community_ids(request))
        return [(str(c.pk), c.name) for c in communities]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.community_lookup: self.value()})
        return queryset


class OrderCommunityFilter(ManagedCommunityFilter):
    community_lookup = "order__community_id"


class ReadOnlyMixin:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Catalog ------------------------------------------------------------------------------------


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    """The shared category tree: every owner reads it, superusers edit it."""

    list_display = ["path", "name_zh", "name_en", "parent", "position", "is_active"]
    list_filter = ["is_active", "parent"]
    search_fields = ["path", "name_zh", "name_en"]
    list_select_related = ["parent"]
    ordering = ["position", "path"]

    def has_module_permission(self, request):
        return request.user.is_superuser or bool(managed_community_ids(request))

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class ParentScopedInline(ScopedInline):
    """An inline whose permission hooks receive the *parent* object (Django passes that to inlines)."""

    parent_community_field = "community"

    def _community_ids_of(self, obj):
        if isinstance(obj, self.model):
            return super()._community_ids_of(obj)
        value = obj
        for part in self.parent_community_field.split("__"):
            value = getattr(value, part)
        return {value.pk if hasattr(value, "pk") else value}


class SkuInline(ParentScopedInline):
    model = Sku
    community_field = "product__community"
    fields = ["name", "price", "stock", "is_active"]


class ProductForm(forms.ModelForm):
    tags_text = forms.CharField(
        label=_("tags"),
        required=False,
        help_text=_("Separated by commas, e.g. 杨梅, 水果, 千岛湖."),
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = Product
        fields = [
            "community",
            "title",
            "category",
            "kind",
            "is_active",
            "description",
            "min_tier",
            "repurchase_cycle_days",
            "return_window_days",
            "starts_at",
            "location",
            "capacity",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tags_text"].initial = ", ".join(self.instance.tags)

    def clean(self):
        cleaned = super().clean()
        community, min_tier = cleaned.get("community"), cleaned.get("min_tier")
        if (
            community
            and min_tier is not None
            and not Tier.objects.filter(community=community, level=min_tier).exists()
        ):
            self.add_error("min_tier", _("This community has no tier of this level."))
        text = cleaned.get("tags_text", "")
        self.instance.tags = normalise_tags(text.replace("，", ",").replace("、", ",").split(","), limit=20)
        return cleaned


@admin.register(Product)
class ProductAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    form = ProductForm
    scoped_foreign_keys = {"community": "self"}
    inlines = [SkuInline]
    list_display = [
        "title",
        "community",
        "category",
        "kind",
        "lowest_price",
        "stock_left",
        "min_tier",
        "fit_level",
        "is_active",
        "created_at",
    ]
    list_filter = [
        "fit__level",
        "kind",
        "is_active",
        "created_at",
        ManagedCommunityFilter,
        "category__parent",
    ]
    search_fields = ["title", "description", "category__path"]
    list_select_related = ["community", "category"]
    autocomplete_fields = ["category"]
    date_hierarchy = "created_at"
    fieldsets = [
        (
            None,
            {"fields": ["community", "title", "category", "tags_text", "kind", "is_active", "description"]},
        ),
        (
            _("Members and repurchase"),
            {"fields": ["min_tier", "repurchase_cycle_days", "return_window_days"]},
        ),
        (_("Event"), {"fields": ["starts_at", "location", "capacity"]}),
    ]

    def get_queryset(self, request):
        queryset = (
            super()
            .get_queryset(request)
            .annotate(lowest=Min("skus__price"), stock_sum=Sum("skus__stock"), sku_count=Count("skus"))
        )
        return queryset.select_related("fit")

    @admin.display(description=_("lowest price"), ordering="lowest")
    def lowest_price(self, obj):
        return obj.lowest

    @admin.display(description=_("stock left"), ordering="stock_sum")
    def stock_left(self, obj):
        return obj.stock_sum

    @admin.display(description=_("fit"), ordering="fit__score")
    def fit_level(self, obj):
        fit = getattr(obj, "fit", None)
        return fit.get_level_display() if fit is not None else "-"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        product_saved_announce(product=form.instance, created=not change, fields=form.changed_data)
        self._warn_if_misfit(request, form.instance)

    def _warn_if_misfit(self, request, product):
        """Trust assessed the listing when it was saved: tell the owner here, where they act, and why."""
        product.refresh_from_db()  # drop a cached, older assessment
        fit = getattr(product, "fit", None)
        if fit is None or not fit.warning:
            return
        self.message_user(
            request,
            _("Fit warning (%(level)s, score %(score).2f): %(reasons)s The sale is not blocked; you decide.")
            % {"level": fit.get_level_display(), "score": fit.score, "reasons": " ".join(fit.reasons)},
            messages.WARNING,
        )


# --- Orders and money -------------------------------------------------------------------------


class OrderLineInline(FinanceReadOnlyMixin, ReadOnlyMixin, ParentScopedInline):
    model = OrderLine
    community_field = "order__community"
    fields = ["title", "sku", "quantity", "list_price", "unit_price", "line_total", "quantity_released"]
    readonly_fields = fields


class PaymentInline(FinanceReadOnlyMixin, ReadOnlyMixin, ParentScopedInline):
    model = Payment
    community_field = "order__community"
    fields = ["provider", "provider_ref", "status", "amount", "amount_received", "currency", "succeeded_at"]
    readonly_fields = fields


class RefundInline(FinanceReadOnlyMixin, ReadOnlyMixin, ParentScopedInline):
    model = Refund
    community_field = "order__community"
    fields = [
        "provider_ref",
        "status",
        "source",
        "amount",
        "currency",
        "reason",
        "requested_by",
        "confirmed_at",
    ]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    inlines = [OrderLineInline, PaymentInline, RefundInline]
    list_display = [
        "id",
        "community",
        "buyer",
        "kind",
        "status",
        "total",
        "amount_paid",
        "amount_refunded",
        "needs_review",
        "created_at",
    ]
    list_filter = ["status", "kind", "needs_review", "created_at", ManagedCommunityFilter]
    search_fields = ["=id", "buyer__username", "buyer__nickname"]
    list_select_related = ["community", "buyer"]
    date_hierarchy = "created_at"
    actions = ["mark_fulfilled", "mark_completed", "refund_in_full"]
    readonly_fields = [
        "community",
        "buyer",
        "kind",
        "status",
        "currency",
        "total",
        "amount_paid",
        "amount_refunded",
        "referrer",
        "membership",
        "plan",
        "hold_expires_at",
        "paid_at",
        "cancelled_at",
        "cancel_reason",
        "needs_review",
        "review_reason",
        "created_at",
    ]
    fields = readonly_fields

    def _advance(self, request, queryset, status):
        moved = 0
        for order in queryset.order_by("pk"):
            try:
                order_advance(actor=request.user, order_id=order.pk, status=status)
            except ApplicationError as exc:
                message = _("Order #%(id)s: %(error)s") % {"id": order.pk, "error": exc.message}
                self.message_user(request, message, messages.WARNING)
                continue
            moved += 1
        if moved:
            message = ngettext("%(count)d order updated.", "%(count)d orders updated.", moved) % {
                "count": moved
            }
            self.message_user(request, message, messages.SUCCESS)

    @admin.action(description=_("Mark the selected orders fulfilled (shipped or attended)"))
    def mark_fulfilled(self, request, queryset):
        self._advance(request, queryset, Order.Status.FULFILLED)

    @admin.action(description=_("Mark the selected orders completed"))
    def mark_completed(self, request, queryset):
        self._advance(request, queryset, Order.Status.COMPLETED)

    @admin.action(description=_("Refund what is left of the selected orders"))
    def refund_in_full(self, request, queryset):
        refunded = 0
        for order in queryset.order_by("pk"):
            try:
                refund_request(
                    actor=request.user,
                    order_id=order.pk,
                    reason=str(_("Refunded in the admin.")),
                    source=Refund.Source.ADMIN,
                )
            except ApplicationError as exc:
                self.message_user(
                    request,
                    _("Order #%(id)s: %(error)s") % {"id": order.pk, "error": exc.message},
                    messages.WARNING,
                )
                continue
            refunded += 1
        if refunded:
            self.message_user(
                request,
                ngettext(
                    "Refund requested for %(count)d order.",
                    "Refunds requested for %(count)d orders.",
                    refunded,
                )
                % {"count": refunded},
                messages.SUCCESS,
            )


@admin.register(Payment)
class PaymentAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    community_field = "order__community"
    list_display = [
        "id",
        "order",
        "provider",
        "provider_ref",
        "status",
        "amount",
        "amount_received",
        "created_at",
    ]
    list_filter = ["status", "provider", "created_at", OrderCommunityFilter]
    search_fields = ["provider_ref", "=order__id"]
    list_select_related = ["order"]
    date_hierarchy = "created_at"
    exclude = ["client_secret"]


@admin.register(Refund)
class RefundAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    community_field = "order__community"
    list_display = ["id", "order", "provider_ref", "status", "source", "amount", "requested_by", "created_at"]
    list_filter = ["status", "source", "created_at", OrderCommunityFilter]
    search_fields = ["provider_ref", "=order__id", "reason"]
    list_select_related = ["order", "requested_by"]
    date_hierarchy = "created_at"


@admin.register(WebhookEvent)
class WebhookEventAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    """Raw deliveries for audit; owners see those about their orders, superusers all."""

    community_field = "order__community"
    list_display = ["event_id", "type", "outcome", "delivery_count", "order", "received_at", "processed_at"]
    list_filter = ["type", "outcome", "received_at", "provider"]
    search_fields = ["event_id", "type", "=order__id"]
    list_select_related = ["order"]
    date_hierarchy = "received_at"
