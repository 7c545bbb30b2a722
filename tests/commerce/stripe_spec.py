"""What Stripe accepts and returns for the calls commerce makes: a compact table, not the spec.

Sources (noted per rule below):

* [spec] Stripe's OpenAPI spec (github.com/stripe/openapi, ``openapi/spec3``):
  request bodies of ``POST /v1/payment_intents``, ``.../{intent}/cancel`` and
  ``POST /v1/refunds``, query parameters of the GETs, ``required``,
  ``maxLength`` and ``enum`` (read from the repository's 2023-08-16 spec3.yaml,
  the newest full spec at hand; parameter names and enums checked against [lib]).
* [lib] the ``stripe`` library pinned in requirements.txt (16.1.0, API version
  ``2026-10-28.endive``), generated from that spec: its ``*CreateParams``
  TypedDicts (the current parameter sets) and its resource classes (every
  top-level field of each object). ``test_stripe_server`` checks this table
  against the library, so an upgrade that changes the spec shows up there.
* [fixtures] ``openapi/fixtures3.json`` (2026-08-21): realistic nested values.
* [changelog] docs.stripe.com/changelog/endive/2026-09-30: ``payment_method_types``
  is no longer writable on PaymentIntents; passing it answers 400
  ``payment_method_types_no_longer_supported`` on 2026-09-30.endive and later.
* [currencies] docs.stripe.com/currencies#minimum-and-maximum-charge-amounts.
* [metadata] docs.stripe.com/metadata: 50 keys, keys up to 40 characters (no
  square brackets), values up to 500 characters.
* [idempotency] docs.stripe.com/api/idempotent_requests: the first answer's
  status and body are saved (500s included) once the endpoint started executing,
  replayed for 24 h; other parameters or another endpoint with the same key is
  an ``idempotency_error``; a validation failure saves nothing.
"""

# --- value kinds ---------------------------------------------------------------------------------
INT, BOOL, STR, OBJ, LIST, METADATA, CURRENCY = "int", "bool", "str", "obj", "list", "metadata", "currency"
EXPAND = ("list", 5000)  # [spec] expand: array of strings (maxLength 5000)


def enum(*values: str) -> tuple:
    return ("enum", values)


def text(max_length: int) -> tuple:
    return ("str", max_length)


# [lib] PaymentIntentCreateParams.allowed_payment_method_types / excluded_payment_method_types enums
# (the payment methods commerce may offer, plus the common ones; the full list is ~100 values).
PAYMENT_METHOD_TYPES = [
    "acss_debit",
    "affirm",
    "afterpay_clearpay",
    "alipay",
    "alma",
    "amazon_pay",
    "au_becs_debit",
    "bacs_debit",
    "bancontact",
    "billie",
    "blik",
    "boleto",
    "card",
    "cashapp",
    "crypto",
    "customer_balance",
    "eps",
    "fpx",
    "giropay",
    "grabpay",
    "ideal",
    "kakao_pay",
    "klarna",
    "konbini",
    "kr_card",
    "link",
    "mb_way",
    "mobilepay",
    "multibanco",
    "naver_pay",
    "nz_bank_account",
    "oxxo",
    "p24",
    "pay_by_bank",
    "payco",
    "paynow",
    "paypal",
    "payto",
    "pix",
    "promptpay",
    "revolut_pay",
    "samsung_pay",
    "satispay",
    "sepa_debit",
    "sofort",
    "swish",
    "twint",
    "us_bank_account",
    "wechat_pay",
    "zip",
]

# [spec] POST /v1/payment_intents (required: amount, currency); [lib] 16.1.0 parameter set.
PAYMENT_INTENT_CREATE = {
    "amount": INT,
    "currency": CURRENCY,
    "allowed_payment_method_types": ("enum_list", tuple(PAYMENT_METHOD_TYPES)),
    "amount_details": OBJ,
    "application_fee_amount": INT,
    "automatic_payment_methods": OBJ,
    "capture_method": enum("automatic", "automatic_async", "manual"),
    "confirm": BOOL,
    "confirmation_method": enum("automatic", "manual"),
    "confirmation_token": text(5000),
    "customer": text(5000),
    "customer_account": text(5000),
    "description": text(1000),
    "error_on_requires_action": BOOL,
    "excluded_payment_method_types": ("enum_list", tuple(PAYMENT_METHOD_TYPES)),
    "expand": EXPAND,
    "hooks": OBJ,
    "mandate": text(5000),
    "mandate_data": OBJ,
    "metadata": METADATA,
    "off_session": STR,
    "on_behalf_of": STR,
    "payment_details": OBJ,
    "payment_method": text(5000),
    "payment_method_configuration": text(100),
    "payment_method_data": OBJ,
    "payment_method_options": OBJ,
    # [spec] up to 2026-08-26; [changelog] refused from 2026-09-30.endive (see REMOVED_PARAMETERS).
    "payment_method_types": ("enum_list", tuple(PAYMENT_METHOD_TYPES)),
    "radar_options": OBJ,
    "receipt_email": STR,
    "return_url": STR,
    "setup_future_usage": enum("off_session", "on_session"),
    "shipping": OBJ,
    "statement_descriptor": text(22),
    "statement_descriptor_suffix": text(22),
    "transfer_data": OBJ,
    "transfer_group": STR,
    "use_stripe_sdk": BOOL,
}
# [spec] POST /v1/payment_intents/{intent}/cancel
PAYMENT_INTENT_CANCEL = {
    "cancellation_reason": enum("abandoned", "duplicate", "fraudulent", "requested_by_customer"),
    "expand": EXPAND,
}
# [spec] GET /v1/payment_intents/{intent}
PAYMENT_INTENT_RETRIEVE = {"client_secret": text(5000), "expand": EXPAND}
# [spec] POST /v1/refunds (no required parameter, but one of charge / payment_intent)
REFUND_CREATE = {
    "amount": INT,
    "charge": text(5000),
    "currency": CURRENCY,
    "customer": text(5000),
    "expand": EXPAND,
    "instructions_email": STR,
    "metadata": METADATA,
    "origin": enum("customer_balance"),
    "payment_intent": text(5000),
    "reason": enum("duplicate", "fraudulent", "requested_by_customer"),
    "refund_application_fee": BOOL,
    "reverse_transfer": BOOL,
}
# [spec] GET /v1/refunds (limit 1..100)
REFUND_LIST = {
    "charge": STR,
    "created": OBJ,
    "ending_before": STR,
    "expand": EXPAND,
    "limit": INT,
    "payment_intent": text(5000),
    "starting_after": STR,
}
REFUND_RETRIEVE = {"expand": EXPAND}
# [spec] GET /v1/disputes/{dispute}
DISPUTE_RETRIEVE = {"expand": EXPAND}

ENDPOINTS = {
    "payment_intent.create": (PAYMENT_INTENT_CREATE, ("amount", "currency")),
    "payment_intent.retrieve": (PAYMENT_INTENT_RETRIEVE, ()),
    "payment_intent.cancel": (PAYMENT_INTENT_CANCEL, ()),
    "refund.create": (REFUND_CREATE, ()),
    "refund.list": (REFUND_LIST, ()),
    "refund.retrieve": (REFUND_RETRIEVE, ()),
    "dispute.retrieve": (DISPUTE_RETRIEVE, ()),
}

# [changelog] parameters an API version no longer accepts: (endpoint, param) -> (from version, code)
REMOVED_PARAMETERS = {
    ("payment_intent.create", "payment_method_types"): (
        "2026-09-30",
        "payment_method_types_no_longer_supported",
    ),
}

# [lib] resource classes: every top-level field of each object (stripe 16.1.0).
OBJECT_FIELDS = {
    "payment_intent": frozenset(
        [
            "allowed_payment_method_types",
            "amount",
            "amount_capturable",
            "amount_details",
            "amount_received",
            "application",
            "application_fee_amount",
            "automatic_payment_methods",
            "canceled_at",
            "cancellation_reason",
            "capture_method",
            "client_secret",
            "confirmation_method",
            "created",
            "currency",
            "customer",
            "customer_account",
            "description",
            "excluded_payment_method_types",
            "hooks",
            "id",
            "last_payment_error",
            "latest_charge",
            "livemode",
            "managed_payments",
            "metadata",
            "next_action",
            "object",
            "on_behalf_of",
            "payment_details",
            "payment_method",
            "payment_method_configuration_details",
            "payment_method_options",
            "payment_method_types",
            "payment_record",
            "presentment_details",
            "processing",
            "receipt_email",
            "review",
            "setup_future_usage",
            "shipping",
            "source",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "status",
            "transfer_data",
            "transfer_group",
        ]
    ),
    "charge": frozenset(
        [
            "amount",
            "amount_captured",
            "amount_refunded",
            "application",
            "application_fee",
            "application_fee_amount",
            "authorization_code",
            "balance_transaction",
            "billing_details",
            "calculated_statement_descriptor",
            "captured",
            "created",
            "currency",
            "customer",
            "description",
            "disputed",
            "failure_balance_transaction",
            "failure_code",
            "failure_message",
            "fraud_details",
            "id",
            "level3",
            "livemode",
            "metadata",
            "object",
            "on_behalf_of",
            "outcome",
            "paid",
            "payment_intent",
            "payment_method",
            "payment_method_details",
            "presentment_details",
            "radar_options",
            "receipt_email",
            "receipt_number",
            "receipt_url",
            "refunded",
            "refunds",
            "review",
            "shipping",
            "source",
            "source_transfer",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "status",
            "transfer",
            "transfer_data",
            "transfer_group",
        ]
    ),
    "refund": frozenset(
        [
            "amount",
            "balance_transaction",
            "charge",
            "created",
            "currency",
            "customer",
            "customer_account",
            "description",
            "destination_details",
            "failure_balance_transaction",
            "failure_reason",
            "id",
            "instructions_email",
            "metadata",
            "next_action",
            "object",
            "payment_intent",
            "payment_method",
            "pending_reason",
            "presentment_details",
            "reason",
            "receipt_number",
            "source_transfer_reversal",
            "status",
            "transfer_reversal",
        ]
    ),
    "dispute": frozenset(
        [
            "amount",
            "balance_transactions",
            "charge",
            "created",
            "currency",
            "enhanced_eligibility_types",
            "evidence",
            "evidence_details",
            "id",
            "intended_submission_method",
            "is_charge_refundable",
            "livemode",
            "metadata",
            "network_reason_code",
            "object",
            "payment_intent",
            "payment_method_details",
            "reason",
            "status",
        ]
    ),
    "balance_transaction": frozenset(
        [
            "amount",
            "available_on",
            "balance_type",
            "created",
            "currency",
            "description",
            "exchange_rate",
            "fee",
            "fee_details",
            "id",
            "net",
            "object",
            "reporting_category",
            "source",
            "status",
            "type",
        ]
    ),
    # [fixtures] an event as delivered (``account`` and ``context`` only on Connect / v2 events).
    "event": frozenset(
        ["api_version", "created", "data", "id", "livemode", "object", "pending_webhooks", "request", "type"]
    ),
}

# [lib] PaymentIntent.cancellation_reason: the cancel parameter's values or Stripe's own.
CANCELLATION_REASONS = [
    "abandoned",
    "automatic",
    "duplicate",
    "expired",
    "failed_invoice",
    "fraudulent",
    "requested_by_customer",
    "void_invoice",
]
# [lib] Dispute.status
DISPUTE_STATUSES = [
    "appeal_needs_response",
    "appeal_under_review",
    "lost",
    "needs_response",
    "prevented",
    "under_review",
    "warning_closed",
    "warning_needs_response",
    "warning_under_review",
    "won",
]
DISPUTE_REASONS = [
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
]

# [currencies] minimum charge amounts, in minor units, of the currencies the table lists.
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50, "czk": 1500,
    "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50, "jpy": 50, "mxn": 1000,
    "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200, "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip
# [currencies] a currency outside the table must convert to at least the settlement currency's
# minimum ($0.50 for a USD account); these are the test account's rates (units per USD).
USD_RATES = {"cny": "7.10", "twd": "32.0", "krw": "1400", "idr": "16000", "php": "58.0"}
# [currencies] zero-decimal currencies (amount = whole units).
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
# [spec] amounts: "supports up to eight digits".
MAXIMUM_AMOUNT = 99_999_999
# [currencies] presentment currencies the test account accepts (lowercase ISO codes).
CURRENCIES = frozenset(MINIMUM_CHARGE) | frozenset(USD_RATES)

# [metadata]
METADATA_MAX_KEYS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 50, 40, 500
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_KEY_MAX = 255  # [idempotency] "Keys can be up to 255 characters long."
