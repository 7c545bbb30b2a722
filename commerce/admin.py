"""Admin for owners, operators and finance: scoped to the communities the signed-in user manages.

Money rows (orders, payments, refunds, webhook deliveries) are read-only here:
they change through services, which the refund action calls.
"""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, OuterRef, Subquery, Sum
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce import admin_coupons, admin_tickets  # noqa: F401  (registers their pages)
from commerce.admin_reports import FinanceReadOnlyMixin, finance_reads_all
from commerce.errors import PaymentProviderUnavailable
from commerce.models import (
    AfterSale,
    Category,
    Order,
    OrderLine,
    Payment,
    Product,
    Refund,
    Shipment,
    ShipmentLine,
    ShippingUpload,
    Sku,
    WebhookEvent,
)
from commerce.payments.labels import provider_label
from commerce.selectors import order_refund_preview
from commerce.services.catalog import (
    MAX_SKUS,
    MAX_TAGS,
    PRODUCT_FIELDS,
    SKU_FIELDS,
    SkuInput,
    category_create,
    category_field_errors,
    category_update,
    product_create,
    product_field_errors,
    product_update,
    sku_create,
    sku_field_errors,
    sku_update,
)
from commerce.services.orders import order_advance
from commerce.services.refunds import refund_request
from commerce.services.shipments import COMMON_CARRIERS, shipment_create
from commerce.services.stock import MAX_STOCK, sku_stock_adjust, sku_stock_count, sku_units_held
from members.admin_scoping import (
    CommunityScopedAdminMixin,
    ManagedCommunityFilter,
    ScopedInline,
    managed_community_ids,
)
from members.models import Tier
from members.services.users import normalise_tags
from shequn_backend.audit_labels import action_label, actor_text, changes_text
from shequn_backend.errors import ApplicationError
from shequn_backend.selectors import audit_history


class OrderCommunityFilter(ManagedCommunityFilter):
    community_lookup = "order__community_id"


def yuan(amount) -> str:
    """Money as owners read it: ¥1,234.00 (a dash when there is none)."""
    if amount is None:
        return "-"
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


def yuan_column(field: str, description):
    """A list column showing ``field`` as ¥1,234.00, sorted by it."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return yuan(getattr(obj, field))

    return column


class DropdownRelatedOnlyFilter(admin.RelatedOnlyFieldListFilter):
    """A long related filter (the 118 categories) as one drop-down, offering only values in use."""

    template = "admin/commerce/dropdown_filter.html"


class CategoryParentFilter(DropdownRelatedOnlyFilter):
    """Products by their category's parent; products filed at the top level are offered by name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.empty_value_display = _("Top level (no parent category)")


class PlatformOnlyMixin:
    """Platform internals (webhook deliveries, the scorer's raw output): superusers only, not owners.

    Put ``FinanceReadOnlyMixin`` before it where finance staff read the page too.
    """

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)


class ReadOnlyMixin:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Catalog ------------------------------------------------------------------------------------


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["path", "name_zh", "name_en", "parent", "position", "is_active"]

    def clean(self):
        cleaned = super().clean()
        problems = category_field_errors(
            category_id=self.instance.pk,
            path=(cleaned.get("path") or "").strip().strip("/"),
            parent=cleaned.get("parent"),
        )
        for name, field_messages in problems.items():
            if name not in self.errors:
                self.add_error(name, field_messages)
        return cleaned


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    """The shared category tree: every owner reads it, superusers edit it (through the category services)."""

    form = CategoryForm
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
        """Products keep their category: retire one (untick "active") instead of deleting it."""
        return False

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in CategoryForm.Meta.fields}
        if change:
            category_update(
                category_id=obj.pk,
                actor=request.user,
                changes={name: values[name] for name in form.changed_data if name in values},
            )
        else:
            obj.pk = category_create(actor=request.user, **values).pk
        obj.refresh_from_db()


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


class SkuForm(forms.ModelForm):
    """A SKU row: stock is set once, when the SKU is created; later it moves only by adjustments."""

    initial_stock = forms.IntegerField(
        label=_("initial stock"),
        min_value=0,
        max_value=MAX_STOCK,
        required=False,
        help_text=_("New SKUs only. Change the stock of an existing SKU with “Adjust”."),
        widget=forms.NumberInput(attrs={"style": "width: 6em"}),
    )

    class Meta:
        model = Sku
        fields = ["name", "price", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["initial_stock"].disabled = True  # the posted value is ignored

    def clean(self):
        """The SKU service's rules, shown on the row before anything is saved."""
        cleaned = super().clean()
        if self.has_changed():
            problems = sku_field_errors(
                name=cleaned.get("name", ""),
                price=cleaned.get("price"),
                stock=0 if self.instance.pk else cleaned.get("initial_stock") or 0,
            )
            for name, field_messages in problems.items():
                field = "initial_stock" if name == "stock" else name
                if field not in self.errors:
                    self.add_error(field, field_messages)
        return cleaned


class SkuFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        rows = sum(1 for form in self.forms if form.instance.pk or form.has_changed())
        if not 1 <= rows <= MAX_SKUS:
            raise forms.ValidationError(_("A product has 1 to %(n)d SKUs.") % {"n": MAX_SKUS})


class SkuInline(ParentScopedInline):
    """SKUs on the product page. Stock is shown read-only with a link to adjust it by a delta."""

    model = Sku
    form = SkuForm
    formset = SkuFormSet
    community_field = "product__community"
    fields = ["name", "price", "stock_now", "initial_stock", "is_active"]
    readonly_fields = ["stock_now"]
    can_delete = False

    @admin.display(description=_("stock"))
    def stock_now(self, sku):
        if not sku.pk:
            return "-"
        url = reverse("admin:commerce_product_stock_adjust", args=[sku.product_id, sku.pk])
        return format_html('{} <a href="{}">{}</a>', sku.stock, url, _("Adjust"))


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
        if "min_tier" in self.fields:
            self.fields["min_tier"] = self._min_tier_field()

    def _min_tier_field(self) -> forms.TypedChoiceField:
        """The minimum tier chosen from the community's tiers (all the user's communities on the add page)."""
        if self.instance.community_id:
            communities = [self.instance.community]
        else:
            communities = list(self.fields["community"].queryset) if "community" in self.fields else []
        tiers = Tier.objects.filter(community__in=communities).select_related("community")
        several = len(communities) > 1
        choices = [("", _("Everyone (no minimum tier)"))] + [
            (
                tier.level,
                _("%(community)s · %(tier)s (level %(level)d and above)")
                % {"community": tier.community.name, "tier": tier.name, "level": tier.level}
                if several
                else _("%(tier)s (level %(level)d and above)") % {"tier": tier.name, "level": tier.level},
            )
            for tier in tiers.order_by("community__name", "level")
        ]
        return forms.TypedChoiceField(
            label=Product._meta.get_field("min_tier").verbose_name,
            choices=choices,
            coerce=int,
            empty_value=None,
            required=False,
            help_text=_(
                "Tier-only goods: members below this tier do not see them. Add tiers on the community's page."
            ),
        )

    def clean(self):
        cleaned = super().clean()
        community = cleaned.get("community") or (
            self.instance.community if self.instance.community_id else None
        )
        if community is not None and "kind" in cleaned:
            problems = product_field_errors(
                community=community,
                kind=cleaned["kind"],
                starts_at=cleaned.get("starts_at"),
                min_tier=cleaned.get("min_tier"),
            )
            for name, field_messages in problems.items():
                self.add_error(name, field_messages)
        text = cleaned.get("tags_text", "")
        cleaned["tags"] = normalise_tags(
            text.replace("，", ",").replace("、", ",").split(","), limit=MAX_TAGS
        )
        return cleaned

    def product_changes(self) -> dict:
        """The fields the owner changed on the page: only those are written, so nothing else goes stale."""
        changes = {name: self.cleaned_data[name] for name in self.changed_data if name in PRODUCT_FIELDS}
        if "tags_text" in self.changed_data:
            changes["tags"] = self.cleaned_data["tags"]
        return changes


class StockAdjustForm(forms.Form):
    """Receive or write off units (a change), or correct the stock to a counted figure."""

    RECEIVE, COUNT = "delta", "counted"
    mode = forms.ChoiceField(
        label=_("adjustment"),
        choices=[
            (RECEIVE, _("Change by (+ received, - written off)")),
            (COUNT, _("Set to a counted figure")),
        ],
        widget=forms.RadioSelect,
        initial=RECEIVE,
    )
    amount = forms.IntegerField(
        label=_("units"),
        min_value=-MAX_STOCK,
        max_value=MAX_STOCK,
        help_text=_("A change such as 20 or -3, or the counted number of units free to sell."),
    )
    reason = forms.CharField(label=_("reason"), max_length=500, widget=forms.TextInput(attrs={"size": 60}))


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
        "min_tier_name",
        "is_active",
    ]
    list_filter = [
        "kind",
        "is_active",
        "created_at",
        ManagedCommunityFilter,
        ("category__parent", CategoryParentFilter),
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
            .annotate(
                tier_name=Subquery(
                    Tier.objects.filter(community=OuterRef("community"), level=OuterRef("min_tier")).values(
                        "name"
                    )[:1]
                )
            )
        )
        return queryset

    def get_readonly_fields(self, request, obj=None):
        """A listed product stays in its community."""
        return ["community"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        """Orders point at products: take one off sale instead of deleting it."""
        return False

    class Media:
        css = {"all": ["commerce/admin.css"]}

    @admin.display(description=_("lowest price"), ordering="lowest")
    def lowest_price(self, obj):
        return yuan(obj.lowest)

    @admin.display(description=_("minimum tier"), ordering="min_tier")
    def min_tier_name(self, obj):
        return (obj.tier_name or "-") if obj.min_tier is not None else _("Everyone")

    @admin.display(description=_("stock left"), ordering="stock_sum")
    def stock_left(self, obj):
        return obj.stock_sum

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A refusal the forms could not foresee (a race) rolls the save back and is shown, not a 500."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            problems = [str(text) for texts in (exc.fields or {}).values() for text in texts]
            self.message_user(request, " ".join(problems) or exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        """Listed products change through ``product_update``; new ones are listed with their SKUs below."""
        if change:
            product_update(product_id=obj.pk, actor=request.user, changes=form.product_changes())

    def save_formset(self, request, form, formset, change):
        if formset.model is not Sku:
            return super().save_formset(request, form, formset, change)
        rows = [sku_form for sku_form in formset.forms if sku_form.instance.pk or sku_form.has_changed()]
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if not change:
            self._product_create(request, form, rows)
            formset.new_objects = list(form.instance.skus.all())
            return None
        for sku_form in rows:
            data = sku_form.cleaned_data
            if sku_form.instance.pk is None:
                sku = sku_create(
                    product_id=form.instance.pk,
                    actor=request.user,
                    name=data["name"],
                    price=data["price"],
                    stock=data.get("initial_stock") or 0,
                    is_active=data.get("is_active", True),
                )
                formset.new_objects.append(sku)
            elif sku_form.has_changed():
                changed = [name for name in sku_form.changed_data if name in SKU_FIELDS]
                sku = sku_update(
                    sku_id=sku_form.instance.pk,
                    actor=request.user,
                    changes={name: data[name] for name in changed},
                )
                formset.changed_objects.append((sku, changed))
        return None

    def _product_create(self, request, form, sku_forms) -> None:
        data = form.cleaned_data
        product = product_create(
            actor=request.user,
            community=data["community"],
            skus=[
                SkuInput(
                    name=sku_form.cleaned_data["name"],
                    price=sku_form.cleaned_data["price"],
                    stock=sku_form.cleaned_data.get("initial_stock") or 0,
                    is_active=sku_form.cleaned_data.get("is_active", True),
                )
                for sku_form in sku_forms
            ],
            **{name: data[name] for name in PRODUCT_FIELDS if name in data},
        )
        form.instance.pk = product.pk
        form.instance._state.adding = False
        form.instance.refresh_from_db()

    def get_urls(self):
        adjust = path(
            "<path:object_id>/skus/<int:sku_id>/stock/",
            self.admin_site.admin_view(self.stock_adjust_view),
            name="commerce_product_stock_adjust",
        )
        return [adjust, *super().get_urls()]

    def stock_adjust_view(self, request, object_id, sku_id):
        """Adjust one SKU's stock by a delta or to a counted figure, for owners of the product's community."""
        product = self.get_object(request, object_id)
        if product is None:
            raise Http404
        if not self.has_change_permission(request, product):
            raise PermissionDenied
        sku = product.skus.filter(pk=sku_id).first()
        if sku is None:
            raise Http404
        form = StockAdjustForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            done = self._stock_adjust(request, form, sku)
            if done is not None:
                self.message_user(
                    request,
                    _("Stock of “%(sku)s” is now %(stock)d (was %(before)d).")
                    % {"sku": sku.name, "stock": done.stock, "before": sku.stock},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:commerce_product_change", args=[product.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Adjust stock: %(sku)s") % {"sku": sku},
            "product": product,
            "sku": sku,
            "held": sku_units_held(sku_id=sku.pk),
            "form": form,
        }
        return TemplateResponse(request, "admin/commerce/product/stock_adjust.html", context)

    def _stock_adjust(self, request, form, sku):
        data = form.cleaned_data
        try:
            if data["mode"] == StockAdjustForm.COUNT:
                return sku_stock_count(
                    sku_id=sku.pk, counted=data["amount"], reason=data["reason"], actor=request.user
                )
            return sku_stock_adjust(
                sku_id=sku.pk, delta=data["amount"], reason=data["reason"], actor=request.user
            )
        except ApplicationError as exc:
            for name, field_messages in (exc.fields or {"amount": [exc.message]}).items():
                form.add_error("reason" if name == "reason" else "amount", field_messages)
            return None


# --- Orders and money -------------------------------------------------------------------------


class OrderLineInline(FinanceReadOnlyMixin, ReadOnlyMixin, ParentScopedInline):
    model = OrderLine
    community_field = "order__community"
    fields = [
        "title",
        "sku",
        "quantity",
        "list_price",
        "unit_price",
        "line_total",
        "discount",
        "quantity_released",
    ]
    readonly_fields = fields


class ProviderLabelMixin:
    """Payments and refunds as owners read them: the provider by name, money with ¥."""

    @admin.display(description=_("provider"), ordering="provider")
    def provider_name(self, obj):
        return provider_label(obj.provider)

    amount_yuan = yuan_column("amount", _("amount"))
    received_yuan = yuan_column("amount_received", _("amount received"))


class ProviderFilter(admin.SimpleListFilter):
    """Providers in use, by their names (微信支付, 线下收款), not their codes."""

    title, parameter_name = _("provider"), "provider"

    def lookups(self, request, model_admin):
        names = set(model_admin.get_queryset(request).order_by().values_list("provider", flat=True))
        return [(name, provider_label(name)) for name in sorted(names)]

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


class ProviderDataMixin:
    """The provider's raw answer (its JSON, in English) is for superusers and finance, not owners."""

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not (request.user.is_superuser or finance_reads_all(request)):
            excluded.append("raw")
        return excluded


class PaymentInline(FinanceReadOnlyMixin, ReadOnlyMixin, ProviderLabelMixin, ParentScopedInline):
    model = Payment
    community_field = "order__community"
    fields = [
        "provider_name",
        "provider_ref",
        "status",
        "amount",
        "amount_received",
        "currency",
        "succeeded_at",
    ]
    readonly_fields = fields


class RefundInline(FinanceReadOnlyMixin, ReadOnlyMixin, ProviderLabelMixin, ParentScopedInline):
    model = Refund
    community_field = "order__community"
    fields = [
        "provider_name",
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


class AfterSaleInline(FinanceReadOnlyMixin, ReadOnlyMixin, ParentScopedInline):
    """The order's after-sale requests; each is decided on its own page (售后申请)."""

    model = AfterSale
    community_field = "order__community"
    fields = ["type", "status", "amount", "reason", "decision_reason", "tracking_no", "created_at"]
    readonly_fields = fields
    show_change_link = True


class RefundForm(forms.Form):
    """The refund confirmation: an amount per order (at most its refundable remainder) and one reason."""

    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_("Shown to finance and kept in the order's history, e.g. “缺货，买家同意退款”."),
    )

    # One key per confirmation page: submitting the page twice (back, reload) moves the money once.
    key = forms.CharField(widget=forms.HiddenInput, max_length=40)

    def __init__(self, *args, previews, **kwargs):
        super().__init__(*args, **kwargs)
        self.previews = previews
        self.fields["key"].initial = uuid.uuid4().hex
        for preview in previews:
            self.fields[self.amount_field(preview)] = forms.DecimalField(
                label=_("Refund for order #%(id)s (¥)") % {"id": preview.order.pk},
                min_value=Decimal("0.01"),
                max_value=preview.refundable,
                max_digits=12,
                decimal_places=2,
                initial=preview.refundable,
                widget=forms.NumberInput(attrs={"step": "0.01", "style": "width: 8em"}),
            )

    @staticmethod
    def amount_field(preview) -> str:
        return f"amount_{preview.order.pk}"

    def rows(self):
        """Each refundable order with its amount field, for the template."""
        return [(preview, self[self.amount_field(preview)]) for preview in self.previews]


@admin.register(Order)
class OrderAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    inlines = [OrderLineInline, PaymentInline, RefundInline, AfterSaleInline]
    list_display = [
        "id",
        "community",
        "buyer",
        "payment_status",
        "fulfilment_status",
        "total_yuan",
        "paid_yuan",
        "refunded_yuan",
        "needs_review",
        "placed_at",
    ]
    list_filter = [
        "payment_status",
        "fulfilment_status",
        "shipping_info_status",
        "kind",
        "needs_review",
        "created_at",
        ManagedCommunityFilter,
    ]
    search_fields = ["=id", "buyer__username", "buyer__nickname"]
    list_select_related = ["community", "buyer"]
    date_hierarchy = "created_at"
    actions = ["mark_fulfilled", "mark_completed", "refund"]
    readonly_fields = [
        "community",
        "buyer",
        "kind",
        "status",
        "payment_status",
        "fulfilment_status",
        "delivery",
        "address",
        "buyer_phone",
        "shipping_info_status",
        "shipments_shown",
        "currency",
        "discount_total",
        "coupon",
        "total",
        "amount_paid",
        "amount_refunded",
        "referrer",
        "membership",
        "plan",
        "hold_expires_at",
        "paid_at",
        "delivered_at",
        "cancelled_at",
        "cancel_reason",
        "needs_review",
        "review_reason",
        "created_at",
        "history",
    ]
    fields = readonly_fields

    class Media:
        css = {"all": ["commerce/admin.css"]}

    @admin.display(description=_("created at"), ordering="created_at")
    def placed_at(self, order):
        return timezone.localtime(order.created_at).strftime("%Y-%m-%d %H:%M")  # compact: the list fits

    total_yuan = yuan_column("total", _("total"))
    paid_yuan = yuan_column("amount_paid", _("amount paid"))
    refunded_yuan = yuan_column("amount_refunded", _("amount refunded"))

    @admin.display(description=_("history"))
    def history(self, order):
        """What happened to the order, its payments and refunds: the audit trail, newest first."""
        entries = audit_history(targets=[order, *order.payments.all(), *order.refunds.all()])
        if not entries:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    formats.date_format(timezone.localtime(entry.created_at), "DATETIME_FORMAT"),
                    entry.actor.get_username() if entry.actor_id else actor_text(entry.actor_label),
                    action_label(entry.action),
                    changes_text(target_type=entry.target_type, changes=entry.changes)
                    + (f" ({entry.note})" if entry.note else ""),
                )
                for entry in entries
            ),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("time"),
            _("actor"),
            _("action"),
            _("details"),
        )
        return format_html('<table class="order-history">{}{}</table>', head, rows)

    def history_view(self, request, object_id, extra_context=None):
        """The audit trail of this order (services write it; Django's own log stays empty)."""
        order = self.get_object(request, object_id)
        if order is None or not self.has_view_permission(request, order):
            raise Http404
        url = reverse("admin:shequn_backend_auditentry_changelist")
        return HttpResponseRedirect(f"{url}?target_type=commerce.order&target_id={order.pk}")

    @admin.display(description=_("buyer's phone"))
    def buyer_phone(self, order):
        """The phone the buyer shared in the mini-program: only on orders that are delivered to them."""
        if order.delivery == Order.Delivery.NONE:
            return "-"
        return order.buyer.phone or "-"

    @admin.display(description=_("shipments"))
    def shipments_shown(self, order):
        """Each package with its carrier and tracking number, linked to its page (ship there too)."""
        rows = [
            (
                reverse("admin:commerce_shipment_change", args=[shipment.pk]),
                shipment.carrier,
                shipment.tracking_no,
            )
            for shipment in order.shipments.order_by("pk")
        ]
        return format_html_join(mark_safe("<br>"), '<a href="{}">{} {}</a>', rows) or "-"

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

    @admin.action(description=_("Refund the selected orders (asks amount and reason first)"))
    def refund(self, request, queryset):
        """A confirmation page (like "delete selected"): amounts, a reason, and what money will move."""
        orders = list(queryset.select_related("buyer", "community").order_by("pk"))
        previews = [order_refund_preview(order=order) for order in orders]
        refundable = [preview for preview in previews if preview.refundable > 0]
        if not refundable:
            self.message_user(
                request,
                _(
                    "None of the selected orders has money left to refund: only paid orders can be "
                    "refunded, up to what was paid less earlier refunds."
                ),
                messages.WARNING,
            )
            return None
        form = RefundForm(request.POST if "confirm" in request.POST else None, previews=refundable)
        if form.is_valid():
            self._refund(request, form)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund orders: check what money will move"),
            "opts": self.opts,
            "form": form,
            "rows": [
                (
                    preview,
                    field,
                    provider_label(preview.provider),
                    yuan(preview.refundable),
                    yuan(typed_amount(field.value())),
                )
                for preview, field in form.rows()
            ],
            "skipped": [preview.order for preview in previews if preview.refundable <= 0],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/commerce/order/refund_confirmation.html", context)

    def _refund(self, request, form) -> None:
        reason = form.cleaned_data["reason"]
        for preview in form.previews:
            order, amount = preview.order, form.cleaned_data[form.amount_field(preview)]
            try:
                refund = refund_request(
                    actor=request.user,
                    order_id=order.pk,
                    amount=amount,
                    reason=reason,
                    source=Refund.Source.ADMIN,
                    idempotency_key=f"admin:{form.cleaned_data['key']}",
                )
            except PaymentProviderUnavailable as exc:
                self.message_user(request, provider_trouble(preview, amount, exc), messages.ERROR)
                continue
            except ApplicationError as exc:
                self.message_user(
                    request,
                    _("Order #%(id)s was not refunded: %(error)s") % {"id": order.pk, "error": exc.message},
                    messages.ERROR,
                )
                continue
            done = refund.status == Refund.Status.SUCCEEDED
            self.message_user(
                request,
                (
                    _("Order #%(id)s: %(amount)s refunded to %(buyer)s through %(provider)s.")
                    if done
                    else _(
                        "Order #%(id)s: refund of %(amount)s to %(buyer)s sent to %(provider)s; "
                        "the order changes once the provider confirms it."
                    )
                )
                % {
                    "id": order.pk,
                    "amount": yuan(refund.amount),
                    "buyer": buyer_name(order),
                    "provider": provider_label(refund.provider),
                },
                messages.SUCCESS,
            )


def provider_trouble(preview, amount, exc) -> str:
    """What the owner should do when the provider did not answer (503) or refused (502) a refund."""
    values = {
        "id": preview.order.pk,
        "amount": yuan(amount),
        "provider": provider_label(preview.provider),
    }
    if exc.http_status == 502:
        return (
            _(
                "Order #%(id)s: %(provider)s refused the refund of %(amount)s, so no money moved. "
                "Check the payment at %(provider)s, then refund again."
            )
            % values
        )
    return (
        _(
            "Order #%(id)s: %(provider)s did not answer. The refund of %(amount)s is kept as pending (its "
            "amount stays reserved) and is confirmed when %(provider)s reports it: look at the order's "
            "refunds later and do not refund it again. If it is still pending tomorrow, ask %(provider)s."
        )
        % values
    )


def typed_amount(value) -> Decimal | None:
    """The amount in a refund row as typed (or its default), None when it is no number."""
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (ArithmeticError, ValueError):
        return None


def buyer_name(order) -> str:
    return order.buyer.nickname or order.buyer.get_username()


@admin.register(Payment)
class PaymentAdmin(
    FinanceReadOnlyMixin,
    ReadOnlyMixin,
    ProviderLabelMixin,
    ProviderDataMixin,
    CommunityScopedAdminMixin,
    admin.ModelAdmin,
):
    community_field = "order__community"
    list_display = [
        "id",
        "order",
        "provider_name",
        "provider_ref",
        "status",
        "amount_yuan",
        "received_yuan",
        "created_at",
    ]
    list_filter = ["status", ProviderFilter, "created_at", OrderCommunityFilter]
    search_fields = ["provider_ref", "reference", "=order__id"]
    list_select_related = ["order"]
    date_hierarchy = "created_at"
    exclude = ["client_data"]


@admin.register(Refund)
class RefundAdmin(
    FinanceReadOnlyMixin,
    ReadOnlyMixin,
    ProviderLabelMixin,
    ProviderDataMixin,
    CommunityScopedAdminMixin,
    admin.ModelAdmin,
):
    community_field = "order__community"
    list_display = [
        "id",
        "order",
        "provider_name",
        "provider_ref",
        "status",
        "source",
        "amount_yuan",
        "requested_by",
        "created_at",
    ]
    list_filter = ["status", "source", "created_at", OrderCommunityFilter]
    search_fields = ["provider_ref", "=order__id", "reason"]
    list_select_related = ["order", "requested_by"]
    date_hierarchy = "created_at"


@admin.register(WebhookEvent)
class WebhookEventAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, PlatformOnlyMixin, admin.ModelAdmin):
    """Raw provider deliveries, for audit by superusers and finance; owners see their orders' payments."""

    list_display = ["event_id", "type", "outcome", "delivery_count", "order", "received_at", "processed_at"]
    list_filter = ["type", "outcome", "received_at", ProviderFilter]
    search_fields = ["event_id", "type", "=order__id"]
    list_select_related = ["order"]
    date_hierarchy = "received_at"


# --- Shipments and WeChat shipping information ---------------------------------------------------


class ShipmentForm(forms.ModelForm):
    """Ships everything not yet shipped of the chosen order, through ``shipment_create``."""

    carrier = forms.ChoiceField(
        label=_("carrier"),
        choices=COMMON_CARRIERS,
        help_text=_("The express company: WeChat receives its delivery id with the tracking number."),
    )

    class Meta:
        model = Shipment
        fields = ["order", "carrier", "tracking_no"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            # Inside the admin's transaction: a later failure on the page rolls the shipment back too.
            self.instance = shipment_create(
                actor=self.actor,
                order_id=cleaned["order"].pk,
                carrier=cleaned["carrier"],
                tracking_no=cleaned["tracking_no"],
            )
        except ApplicationError as exc:
            for name, field_messages in (exc.fields or {None: [exc.message]}).items():
                self.add_error(name if name in self.fields else None, field_messages)
        return cleaned


class ShipmentLineInline(ReadOnlyMixin, ParentScopedInline):
    model = ShipmentLine
    community_field = "shipment__order__community"
    parent_community_field = "order__community"
    fields = ["line", "quantity"]
    readonly_fields = fields


@admin.register(Shipment)
class ShipmentAdmin(FinanceReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    """Owners ship an order here (all its unshipped goods under one tracking number); shipments are
    then read-only. Partial shipments go through the owner API."""

    community_field = "order__community"
    scoped_foreign_keys = {"order": "community"}
    form = ShipmentForm
    inlines = [ShipmentLineInline]
    list_display = ["id", "order", "carrier", "tracking_no", "shipped_at", "confirmed_at", "created_by"]
    list_filter = ["carrier", "shipped_at", OrderCommunityFilter]
    search_fields = ["tracking_no", "=order__id"]
    list_select_related = ["order", "created_by"]
    raw_id_fields = ["order"]
    date_hierarchy = "shipped_at"

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["order", "carrier", "tracking_no", "shipped_at", "confirmed_at", "created_by"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """The form's ``clean`` shipped through the service; nothing more to save."""

    def save_related(self, request, form, formsets, change):
        """The service wrote the shipment's lines."""


@admin.register(ShippingUpload)
class ShippingUploadAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    """Where each order's WeChat shipping information stands (the order list shows the summary)."""

    community_field = "order__community"
    list_display = [
        "id",
        "order",
        "shipment",
        "logistics_type",
        "status",
        "attempts",
        "last_error",
        "uploaded_at",
    ]
    list_filter = ["status", "logistics_type", OrderCommunityFilter]
    search_fields = ["=order__id"]
    list_select_related = ["order", "shipment"]


# Registers the withdrawal, after-sale and notification pages (they import this module: they come last).
from commerce import admin_after_sales, admin_notifications, admin_withdrawals  # noqa: E402, F401
