"""Payment providers as owners and finance read them: 微信支付, 线下收款, not ``wechatpay``, ``offline``."""

from django.utils.translation import gettext_lazy as _

PROVIDER_LABELS = {
    "stripe": _("Stripe"),
    "wechatpay": _("WeChat Pay"),
    "offline": _("Offline (recorded by staff)"),
    "free": _("Free (nothing paid)"),
    "sandbox": _("Sandbox (demo, no real money)"),
}


def provider_label(name: str) -> str:
    """The provider's name in the active language; an unknown one as stored."""
    return str(PROVIDER_LABELS.get(name, name or "-"))
