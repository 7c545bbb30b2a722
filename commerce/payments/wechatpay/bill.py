"""The WeChat Pay trade bill (交易账单, ``/v3/bill/tradebill``): fetched and parsed.

The file is a CSV in UTF-8: a header line, one line per trade whose every
field starts with a backquote, then the summary section (``总交易单数,...``
and its line). A payment line has 交易状态 ``SUCCESS``; a refund line has
``REFUND`` with the refund in 退款金额/申请退款金额. Columns are found by
their header names, so that WeChat adding columns changes nothing here.
"""

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from commerce.payments import base
from commerce.payments.wechatpay.client import download_trade_bill

CHINA = timezone(timedelta(hours=8))
SUMMARY_FIRST = "总交易单数"


class BillInvalid(base.ProviderUnavailable):
    """The file cannot be read as a trade bill (the next attempt downloads it again)."""


@dataclass(frozen=True)
class BillLine:
    at: datetime | None
    transaction_id: str
    out_trade_no: str
    trade_state: str  # SUCCESS, REFUND, REVOKED ...
    amount: Decimal  # 订单金额 (what the payer was asked; 0 on a refund line)
    refund_id: str
    out_refund_no: str
    refund_amount: Decimal  # 申请退款金额
    refund_status: str  # SUCCESS, PROCESSING ... on a refund line
    sub_mchid: str

    @property
    def is_refund(self) -> bool:
        return self.trade_state == "REFUND" or bool(self.out_refund_no)


@dataclass(frozen=True)
class TradeBill:
    lines: list[BillLine]
    count: int
    paid: Decimal  # 订单总金额
    refunded: Decimal  # 申请退款总金额
    fees: Decimal  # 手续费总金额


def _field(value: str) -> str:
    value = value.strip()
    return value[1:] if value.startswith("`") else value


def _money(value: str, name: str) -> Decimal:
    try:
        amount = Decimal(value or "0")
    except InvalidOperation as exc:
        raise BillInvalid(f"Trade bill: {name} is not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise BillInvalid(f"Trade bill: {name} is not an amount: {value!r}")
    return amount


def _time(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return None


def _blank_zero(value: str) -> str:
    return "" if value in ("", "0") else value


def _line(row: dict[str, str]) -> BillLine:
    def get(name: str) -> str:
        return row.get(name, "")

    return BillLine(
        at=_time(get("交易时间")),
        transaction_id=get("微信订单号"),
        out_trade_no=get("商户订单号"),
        trade_state=get("交易状态"),
        amount=_money(get("订单金额") or get("应结订单金额"), "订单金额"),
        refund_id=_blank_zero(get("微信退款单号")),
        out_refund_no=_blank_zero(get("商户退款单号")),
        refund_amount=_money(get("申请退款金额") or get("退款金额"), "申请退款金额"),
        refund_status=get("退款状态"),
        sub_mchid=_blank_zero(get("特约商户号")),
    )


def parse_trade_bill(content: bytes) -> TradeBill:
    """The bill's lines and its summary; ``BillInvalid`` if it is not a trade bill or does not add up."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BillInvalid("Trade bill is not UTF-8.") from exc
    rows = [[_field(value) for value in row] for row in csv.reader(io.StringIO(text)) if any(row)]
    if not rows or "商户订单号" not in rows[0]:
        raise BillInvalid("Trade bill: no header line.")
    header = rows[0]
    split = next((i for i, row in enumerate(rows) if row and row[0] == SUMMARY_FIRST), None)
    if split is None or split + 1 >= len(rows):
        raise BillInvalid("Trade bill: no summary section.")
    lines = [_line(dict(zip(header, row, strict=False))) for row in rows[1:split]]
    summary = dict(zip(rows[split], rows[split + 1], strict=False))
    bill = TradeBill(
        lines=lines,
        count=int(_money(summary.get(SUMMARY_FIRST, ""), SUMMARY_FIRST)),
        paid=_money(summary.get("订单总金额") or summary.get("应结订单总金额", ""), "订单总金额"),
        refunded=_money(summary.get("申请退款总金额") or summary.get("退款总金额", ""), "申请退款总金额"),
        fees=_money(summary.get("手续费总金额", ""), "手续费总金额"),
    )
    if (
        bill.count != len(lines)
        or bill.paid != sum((line.amount for line in lines), Decimal(0))
        or bill.refunded != sum((line.refund_amount for line in lines), Decimal(0))
    ):
        raise BillInvalid("Trade bill: its lines do not add up to its summary.")
    return bill


def fetch_trade_bill(day: date, sub_merchant: str = "") -> TradeBill | None:
    """The day's parsed bill; None for a day without trades (``NO_STATEMENT_EXIST``).

    ``ProviderUnavailable`` while it is being made (``STATEMENT_CREATING``), when
    WeChat Pay does not answer, or when the file does not match its signed hash.
    """
    content = download_trade_bill(day, sub_merchant)
    return None if content is None else parse_trade_bill(content)
