"""Figures as owners in China read them: ¥1,234.50, 12.5%."""

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def yuan(value) -> str:
    """Money in yuan with the ¥ sign, thousands separators and two decimals."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


@register.filter
def percent(value) -> str:
    """A ratio (0.125) as a percentage with at most one decimal (12.5%)."""
    try:
        share = float(value) * 100
    except (TypeError, ValueError):
        return ""
    text = f"{share:.1f}".removesuffix(".0")
    return f"{text}%"


@register.inclusion_tag("admin/trust/owner_dashboards.html", takes_context=True)
def owner_dashboards(context) -> dict:
    """The owner's home: a summary of each community they run, linking to its full dashboard."""
    from trust.admin_dashboard import owner_home_cards

    request = context.get("request")
    user = getattr(request, "user", None)
    return {"cards": owner_home_cards(user=user) if user is not None else []}
