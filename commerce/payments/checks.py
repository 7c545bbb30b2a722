"""System checks of the payment settings (``manage.py check``; the sandbox one with ``--deploy``)."""

from decimal import Decimal

from django.conf import settings
from django.core.checks import Error, Tags, register

from members.models import COMMISSION_RATE_HARD_CEILING

SMALLEST_TRANSFER = Decimal("0.10")  # WeChat Pay's merchant transfers start at 10 fen


@register(Tags.security, deploy=True)
def sandbox_payments_off_in_production(app_configs, **kwargs) -> list[Error]:
    """The sandbox provider confirms payments nobody made: never with ``DEBUG=0``."""
    if settings.PAYMENT_SANDBOX_ENABLED and not settings.DEBUG:
        return [
            Error(
                "PAYMENT_SANDBOX_ENABLED is on with DEBUG=0: anyone could mark orders paid without paying.",
                hint="Unset PAYMENT_SANDBOX_ENABLED (or set it to 0) in production.",
                id="commerce.E002",
            )
        ]
    return []


@register()
def provider_time_fits_the_worker(app_configs=None, **kwargs) -> list[Error]:
    """Waiting on payment providers must end well before gunicorn kills the worker."""
    budget, worker = settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS, settings.WEB_WORKER_TIMEOUT_SECONDS
    if 0 < budget <= worker / 2:
        return []
    return [
        Error(
            f"PAYMENT_PROVIDER_TIMEOUT_SECONDS ({budget}) must be above 0 and at most half of "
            f"WEB_WORKER_TIMEOUT_SECONDS ({worker}).",
            hint="A request that outlives the worker's timeout answers an HTML 500 and leaves "
            "a payment half recorded.",
            id="commerce.E001",
        )
    ]


@register()
def withdrawal_settings_in_range(app_configs=None, **kwargs) -> list[Error]:
    """Withdrawal and commission settings a payout can work with."""
    errors = []
    if not 0 <= settings.WITHDRAWAL_FEE_RATE < 1:
        errors.append(
            Error(
                f"WITHDRAWAL_FEE_RATE ({settings.WITHDRAWAL_FEE_RATE}) must be a fraction from 0 to below 1.",
                hint="e.g. 0.006 for 0.6%; 0 for no fee.",
                id="commerce.E003",
            )
        )
    if settings.WITHDRAWAL_MINIMUM < SMALLEST_TRANSFER:
        errors.append(
            Error(
                f"WITHDRAWAL_MINIMUM ({settings.WITHDRAWAL_MINIMUM}) is below 0.10 yuan, "
                "the smallest WeChat Pay merchant transfer.",
                id="commerce.E004",
            )
        )
    if not 0 <= settings.COMMISSION_RATE_CEILING <= COMMISSION_RATE_HARD_CEILING:
        errors.append(
            Error(
                f"COMMISSION_RATE_CEILING ({settings.COMMISSION_RATE_CEILING}) must be from 0 to "
                f"{COMMISSION_RATE_HARD_CEILING} percent (the database's cap).",
                id="commerce.E005",
            )
        )
    return errors


@register()
def transfer_settings_fit_wechat_pay(app_configs=None, **kwargs) -> list[Error]:
    """What a merchant transfer sends must pass WeChat Pay's checks (else every payout is refused)."""
    from commerce.payments.wechatpay import transfers

    errors = []
    if str(settings.WECHATPAY_TRANSFER_SCENE_ID) != transfers.SCENE_COMMISSION:
        errors.append(
            Error(
                f"WECHATPAY_TRANSFER_SCENE_ID ({settings.WECHATPAY_TRANSFER_SCENE_ID!r}) must be "
                f"{transfers.SCENE_COMMISSION!r} (佣金报酬): "
                "its report infos 岗位类型 and 报酬说明 are what we send.",
                id="commerce.E006",
            )
        )
    for name in ("WITHDRAWAL_TRANSFER_REMARK", "WITHDRAWAL_JOB_TYPE", "WITHDRAWAL_PAY_DESCRIPTION"):
        value = str(getattr(settings, name) or "")
        if not value.strip() or len(value) > transfers.REMARK_CHARS:
            errors.append(
                Error(
                    f"{name} must be 1 to {transfers.REMARK_CHARS} characters (WeChat Pay refuses others).",
                    id="commerce.E007",
                )
            )
    fee = (settings.WITHDRAWAL_MINIMUM * Decimal(settings.WITHDRAWAL_FEE_RATE)).quantize(Decimal("0.01"))
    if 0 <= settings.WITHDRAWAL_FEE_RATE < 1 and settings.WITHDRAWAL_MINIMUM - fee < SMALLEST_TRANSFER:
        errors.append(
            Error(
                f"WITHDRAWAL_MINIMUM ({settings.WITHDRAWAL_MINIMUM}) less its fee is below 0.10 yuan, "
                "the smallest WeChat Pay merchant transfer.",
                id="commerce.E008",
            )
        )
    return errors
