"""A local Stripe-compatible HTTP server for the tests: the real ``stripe`` library talks to it.

It answers the endpoints commerce calls as Stripe does (the rules and their
sources are in ``stripe_spec``): form-encoded bodies (``metadata[order_id]=1``),
bearer-key auth (401 otherwise), unknown / missing / malformed parameters,
bad enum values, amounts under the currency's minimum, metadata limits and
parameters the requested ``Stripe-Version`` removed are refused with Stripe's
400 error bodies; objects carry every top-level field of Stripe's. The
``Idempotency-Key`` saves the first answer of an executed request (errors and
500s included) and replays it for 24 h with ``Idempotent-Replayed: true``;
other parameters or another endpoint under the key are an
``idempotency_error``, a concurrent one ``409 idempotency_key_in_use``.

Test controls: ``fail_next`` (injected statuses; a 500 is saved under the key
like Stripe's), ``hang`` / ``slow`` (latency before or after the work),
``succeed`` / ``fail`` / ``cancel_at_provider`` (the customer's side),
``refund_at_provider`` / ``set_refund_status``, ``open_dispute`` /
``update_dispute`` / ``close_dispute``. Each state change queues the events
Stripe would send (``take_events``); ``event`` and ``sign`` build deliveries
signed exactly as Stripe signs them.

Responses go out in one write on a ``TCP_NODELAY`` socket (HTTP/1.1,
``Content-Length``, keep-alive): no Nagle / delayed-ACK stall per request.
It listens with a backlog of ``LISTEN_BACKLOG`` (the standard library's 5
drops the connections of a burst, each then waiting a second to try again).
"""

import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import threading
import time
from decimal import ROUND_CEILING, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import stripe as stripe_library

from tests.commerce import stripe_spec as spec

API_VERSION = stripe_library.api_version  # what the pinned library sends as Stripe-Version
DOC_URL = "https://docs.stripe.com/error-codes/"
MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were first used with. "
    "Try using a key other than '{key}' if you meant to execute a different request."
)
OTHER_ENDPOINT = (
    "Keys for idempotent requests can only be used for the same endpoint they were first used for "
    "('{first}' vs '{now}'). Try using a key other than '{key}' if you meant to execute a different request."
)
IN_USE = (
    "There is currently another in-progress request using this Stripe token (that probably means you "
    "sent the same idempotency key twice in quick succession). Please try this request again."
)


def decode_form(body: str) -> dict:
    """Stripe's form encoding back to nested dicts and lists."""
    result: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(result)


def _lists(node):
    if isinstance(node, dict):
        if node and all(key.isdigit() for key in node):
            return [_lists(node[key]) for key in sorted(node, key=int)]
        return {key: _lists(value) for key, value in node.items()}
    return node


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``: ``t=<ts>,v1=<hmac_sha256(secret, "t.payload")>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


# Refusals a server may be told to let through (and log in server.tolerated). The provider sends
# allowed_payment_method_types since issue 14, so the commerce fixtures tolerate nothing; this stays
# for test_stripe_server's check of the mechanism.
STRIPE_TOLERATE = ("payment_method_types_no_longer_supported",)
LISTEN_BACKLOG = 1024  # connections waiting to be accepted (a burst of checkouts opens dozens at once)


class StripeError(Exception):
    """An error answer; ``saved`` is False for refusals made before the endpoint executes."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str = "",
        param: str = "",
        saved: bool = True,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.saved, self.extra = saved, extra or {}

    def body(self) -> dict:
        error = {"type": self.type, "message": self.message}
        if self.code:
            error.update(code=self.code, doc_url=DOC_URL + self.code.replace("_", "-"))
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, param: str = "", code: str = "") -> StripeError:
    """A validation refusal: answered 400, never saved under the idempotency key."""
    return StripeError(400, message, code=code, param=param, saved=False)


def _copy(value):
    return json.loads(json.dumps(value))


# --- parameter validation ([spec] tables in stripe_spec) -----------------------------------------
def validate(endpoint: str, params: dict, *, version: str, tolerate: set, tolerated: list) -> None:
    allowed, required = spec.ENDPOINTS[endpoint]
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
        removed = spec.REMOVED_PARAMETERS.get((endpoint, name))
        if removed and version[:10] >= removed[0]:
            if removed[1] in tolerate:
                tolerated.append({"endpoint": endpoint, "param": name, "code": removed[1]})
            else:
                raise invalid(
                    f"The `{name}` parameter is no longer supported on API version {version}. "
                    "Use `allowed_payment_method_types`, `excluded_payment_method_types` or dynamic "
                    "payment methods instead.",
                    name,
                    removed[1],
                )
    for name in required:
        if name not in params or params[name] == "":
            raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
    for name, value in params.items():
        _check(name, allowed[name], value)


def _check(name: str, kind, value) -> None:
    if kind == spec.INT:
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise invalid(f"Invalid integer: {value}", name, "parameter_invalid_integer")
    elif kind == spec.BOOL:
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value}", name)
    elif kind == spec.STR or (isinstance(kind, tuple) and kind[0] == "str"):
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {value}", name)
        if isinstance(kind, tuple) and len(value) > kind[1]:
            raise invalid(f"Invalid string: {value[:20]}...; must be at most {kind[1]} characters", name)
    elif kind == spec.CURRENCY:
        if not isinstance(value, str) or value not in spec.CURRENCIES:
            raise invalid(
                f"Invalid currency: {value}. Stripe currently supports these currencies: "
                + ", ".join(sorted(spec.CURRENCIES)),
                name,
            )
    elif kind == spec.METADATA:
        _check_metadata(name, value)
    elif kind == spec.OBJ:
        if not isinstance(value, dict | list) and value != "":
            raise invalid("Invalid object", name)
    elif isinstance(kind, tuple) and kind[0] == "enum":
        if value not in kind[1]:
            raise invalid(f"Invalid {name}: must be one of {', '.join(kind[1])}", name)
    elif isinstance(kind, tuple) and kind[0] in ("list", "enum_list"):
        if not isinstance(value, list):
            raise invalid("Invalid array", name)
        for index, item in enumerate(value):
            if kind[0] == "enum_list" and item not in kind[1]:
                raise invalid(
                    f"Invalid {name}[{index}]: must be one of {', '.join(kind[1])}", f"{name}[{index}]"
                )


def _check_metadata(name: str, value) -> None:
    """[metadata] 50 keys, keys up to 40 characters without brackets, string values up to 500."""
    if value == "":
        return  # "" unsets all metadata
    if not isinstance(value, dict):
        raise invalid("Invalid object", name)
    if len(value) > spec.METADATA_MAX_KEYS:
        raise invalid(
            f"Invalid metadata: metadata cannot contain more than {spec.METADATA_MAX_KEYS} keys.", name
        )
    for key, item in value.items():
        if len(key) > spec.METADATA_KEY_MAX:
            raise invalid(
                f"Metadata key {key[:20]}... is too long: keys must be at most "
                f"{spec.METADATA_KEY_MAX} characters.",
                f"{name}[{key}]",
            )
        if not isinstance(item, str):
            raise invalid("Invalid string: metadata values must be strings.", f"{name}[{key}]")
        if len(item) > spec.METADATA_VALUE_MAX:
            raise invalid(
                f"Metadata values can have up to {spec.METADATA_VALUE_MAX} characters, but you passed in "
                f"a value that is {len(item)} characters.",
                f"{name}[{key}]",
            )


def minimum_charge(currency: str) -> int:
    """[currencies] the table's minimum, else $0.50 converted at the test account's rate (rounded up)."""
    if currency in spec.MINIMUM_CHARGE:
        return spec.MINIMUM_CHARGE[currency]
    rate = Decimal(spec.USD_RATES.get(currency, "1"))
    units = Decimal("0.50") * rate
    minor = units if currency in spec.ZERO_DECIMAL else units * 100
    return int(minor.to_integral_value(rounding=ROUND_CEILING))


def _too_small(amount: int, currency: str) -> str:
    """[currencies] Stripe's wording: the table's minimum, or the conversion to 50 US cents."""
    if currency in spec.MINIMUM_CHARGE:
        return f"Amount must be at least {_money(spec.MINIMUM_CHARGE[currency], currency)}"
    usd = Decimal(amount) / (1 if currency in spec.ZERO_DECIMAL else 100) / Decimal(spec.USD_RATES[currency])
    return (
        f"Amount must convert to at least 50 cents. {_money(amount, currency)} converts to "
        f"approximately ${usd:.2f}."
    )


def _money(amount: int, currency: str) -> str:
    if currency in spec.ZERO_DECIMAL:
        return f"{amount} {currency}"
    return f"{Decimal(amount) / 100:.2f} {currency}"


# --- complete objects ([lib] field sets, [fixtures] values) ---------------------------------------
def _billing_details() -> dict:
    address = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))
    return {"address": address, "email": None, "name": None, "phone": None, "tax_id": None}


def _card_details(amount: int) -> dict:
    return {
        "card": {
            "amount_authorized": amount,
            "authorization_code": None,
            "brand": "visa",
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "exp_month": 8,
            "exp_year": 2030,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": "AOB934RVNwzk6xtn",
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": "4242",
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": "visa",
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": None,
            "three_d_secure": None,
            "wallet": None,
        },
        "type": "card",
    }


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG


class FakeStripe:
    """The server's state and the test-side controls. Thread-safe."""

    def __init__(self, *, tolerate: tuple[str, ...] = ()):
        """``tolerate``: error codes (of ``REMOVED_PARAMETERS``) let through and logged in ``tolerated``."""
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.run = secrets.token_hex(4)
        self.payment_intents: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}
        self.balance_transactions: dict[str, dict] = {}
        # (api key, idempotency key) -> saved answer
        self.idempotency: dict[tuple[str, str], dict] = {}
        self.in_flight: set[tuple[str, str]] = set()
        self.requests: list[dict] = []
        self.failures: list[tuple[int, bool]] = []  # (status, saved under the key) for the next requests
        self.hangs: list[dict] = []
        self.latency = 0.0
        self.refund_status = "succeeded"  # what new refunds start as ("pending" like some wallets)
        self.clock_offset = 0
        self.events: list[tuple[str, dict]] = []  # (type, object) Stripe would deliver, oldest first
        self.tolerate = set(tolerate)
        self.tolerated: list[dict] = []
        self.stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"stripe": self})
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self.base_url

    def stop(self) -> None:
        self.stopping.set()  # ends any hang at once
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    def advance(self, seconds: int) -> None:
        """Move the server's clock (idempotency keys expire after 24 h)."""
        self.clock_offset += seconds

    def new_id(self, prefix: str) -> str:
        # A token per server: a second run against the same database never reuses an id.
        return f"{prefix}_test{self.run}{next(self.ids):06d}"

    # --- faults --------------------------------------------------------------------------------
    def fail_next(self, *statuses: int, saved: bool | None = None) -> None:
        """Answer the next requests with these HTTP error statuses (e.g. 503, 500).

        A 500 is saved under the request's idempotency key and replayed, as
        Stripe does once its endpoint started (``saved`` overrides); it says
        ``Stripe-Should-Retry: false``. Other statuses are not saved.
        """
        with self.lock:
            self.failures.extend((status, status == 500 if saved is None else saved) for status in statuses)

    def hang(self, seconds: float, *, path: str = "", times: int = 1, after: bool = False) -> None:
        """Sleep ``seconds`` on the next ``times`` requests under ``path``; ``after`` does the work first."""
        with self.lock:
            self.hangs.append({"path": path, "seconds": seconds, "times": times, "after": after})

    def slow(self, seconds: float) -> None:
        """Add this latency to every answer from now on."""
        self.latency = seconds

    def _take_hang(self, path: str) -> dict | None:
        for rule in self.hangs:
            if path.startswith(rule["path"]) and rule["times"] > 0:
                rule["times"] -= 1
                return rule
        return None

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self.stopping.wait(seconds)

    def calls(self, method: str, path_prefix: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path_prefix)]

    # --- events --------------------------------------------------------------------------------
    def _emit(self, event_type: str, obj: dict) -> None:
        self.events.append((event_type, _copy(obj)))

    def take_events(self, *types: str) -> list[tuple[str, dict]]:
        """The queued (type, object) pairs Stripe would deliver (of ``types`` if given), oldest first."""
        with self.lock:
            taken = [e for e in self.events if not types or e[0] in types]
            self.events = [e for e in self.events if e not in taken]
            return taken

    def event(self, event_type: str, obj: dict, *, event_id: str | None = None) -> str:
        """A webhook payload (JSON text) exactly as Stripe sends it."""
        return json.dumps(
            {
                "id": event_id or self.new_id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": self.now(),
                "data": {"object": obj},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )

    def signed_event(self, event_type: str, obj: dict, secret: str, *, event_id: str | None = None):
        """``(payload, Stripe-Signature header)`` for a delivery."""
        payload = self.event(event_type, obj, event_id=event_id)
        return payload, sign(payload, secret)

    # --- the customer's side -----------------------------------------------------------------
    def succeed(
        self, intent_id: str, *, amount_received: int | None = None, currency: str | None = None
    ) -> dict:
        """The customer paid: the intent succeeds with a captured charge. Returns the intent."""
        with self.lock:
            intent = self.payment_intents[intent_id]
            amount = intent["amount"] if amount_received is None else amount_received
            currency = currency or intent["currency"]
            charge = self._new_charge(intent, amount, currency)
            intent.update(
                status="succeeded",
                amount_received=amount,
                latest_charge=charge["id"],
                currency=currency,
                payment_method=charge["payment_method"],
                last_payment_error=None,
            )
            self._emit("charge.succeeded", charge)
            self._emit("payment_intent.succeeded", intent)
            return _copy(intent)

    def fail(
        self, intent_id: str, *, code: str = "card_declined", message: str = "Your card was declined."
    ) -> dict:
        """The customer's payment was declined: a failed charge, ``payment_intent.payment_failed``."""
        with self.lock:
            intent = self.payment_intents[intent_id]
            charge = self._new_charge(intent, intent["amount"], intent["currency"], failed=(code, message))
            intent.update(
                status="requires_payment_method",
                latest_charge=charge["id"],
                last_payment_error={
                    "advice_code": None,
                    "charge": charge["id"],
                    "code": code,
                    "decline_code": "generic_decline",
                    "doc_url": DOC_URL + code.replace("_", "-"),
                    "message": message,
                    "network_advice_code": None,
                    "network_decline_code": None,
                    "param": None,
                    "payment_method": None,
                    "payment_method_type": "card",
                    "type": "card_error",
                },
            )
            self._emit("charge.failed", self._charge_view(charge))
            self._emit("payment_intent.payment_failed", intent)
            return _copy(intent)

    def cancel_at_provider(self, intent_id: str, *, reason: str = "automatic") -> dict:
        """Stripe (or the dashboard) cancelled the intent: ``payment_intent.canceled``."""
        with self.lock:
            return _copy(self._cancel(self.payment_intents[intent_id], reason))

    def charge_of(self, intent_id: str) -> dict:
        with self.lock:
            return _copy(self._charge_view(self.charges[self.payment_intents[intent_id]["latest_charge"]]))

    def refund_at_provider(self, intent_id: str, amount: int, *, status: str | None = None) -> dict:
        """A refund made outside our API (the Stripe dashboard): no metadata of ours."""
        with self.lock:
            return _copy(
                self._create_refund({"payment_intent": intent_id, "amount": str(amount)}, status=status)
            )

    def set_refund_status(self, refund_id: str, status: str, *, failure_reason: str | None = None) -> dict:
        """A refund settles (``succeeded``) or fails / is cancelled, giving its amount back to the charge."""
        with self.lock:
            refund = self.refunds[refund_id]
            charge = self.charges[refund["charge"]]
            if refund["status"] in ("pending", "succeeded") and status in ("failed", "canceled"):
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = False
                if status == "failed":
                    refund["failure_reason"] = failure_reason or "lost_or_stolen_card"
                    refund["failure_balance_transaction"] = self._balance(
                        refund["amount"], refund["currency"], "refund_failure", refund["id"]
                    )["id"]
            refund["status"] = status
            self._emit("refund.updated", refund)
            if status == "failed":
                self._emit("refund.failed", refund)
            self._emit("charge.refund.updated", refund)
            return _copy(refund)

    # --- disputes ------------------------------------------------------------------------------
    def open_dispute(self, intent_id: str, *, amount: int | None = None, reason: str = "fraudulent") -> dict:
        """The customer's bank disputes the charge: ``needs_response``, the amount withdrawn with a fee.

        Queues ``charge.dispute.created`` and ``charge.dispute.funds_withdrawn``.
        """
        with self.lock:
            intent = self.payment_intents[intent_id]
            charge = self.charges[intent["latest_charge"]]
            amount = charge["amount"] if amount is None else amount
            dispute_id = self.new_id("dp")
            withdrawn = self._balance(-amount, charge["currency"], "dispute", dispute_id, fee=1500)
            dispute = {
                "id": dispute_id,
                "object": "dispute",
                "amount": amount,
                "balance_transactions": [withdrawn],
                "charge": charge["id"],
                "created": self.now(),
                "currency": charge["currency"],
                "enhanced_eligibility_types": [],
                "evidence": _evidence(),
                "evidence_details": {
                    "due_by": self.now() + 7 * 86400,
                    "enhanced_eligibility": {},
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "intended_submission_method": None,
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "network_reason_code": "10.4",
                "payment_intent": intent_id,
                "payment_method_details": {
                    "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
                    "type": "card",
                },
                "reason": reason,
                "status": "needs_response",
            }
            self.disputes[dispute_id] = dispute
            charge["disputed"] = True
            self._emit("charge.dispute.created", dispute)
            self._emit("charge.dispute.funds_withdrawn", dispute)
            return _copy(dispute)

    def update_dispute(self, dispute_id: str, *, status: str = "under_review") -> dict:
        """Evidence submitted (``under_review``): ``charge.dispute.updated``."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = status
            dispute["evidence_details"].update(has_evidence=True, submission_count=1)
            self._emit("charge.dispute.updated", dispute)
            return _copy(dispute)

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict:
        """``won`` (the amount and fee reinstated) or ``lost``: ``charge.dispute.closed``.

        A won dispute also queues ``charge.dispute.funds_reinstated``.
        """
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "won" if won else "lost"
            if won:
                dispute["balance_transactions"].append(
                    self._balance(
                        dispute["amount"], dispute["currency"], "dispute_reversal", dispute_id, fee=-1500
                    )
                )
            self._emit("charge.dispute.closed", dispute)
            if won:
                self._emit("charge.dispute.funds_reinstated", dispute)
            return _copy(dispute)

    # --- the API ---------------------------------------------------------------------------
    def route(self, method: str, path: str) -> tuple[str, str]:
        """``(endpoint name, object id)`` of a request; 404 for a URL Stripe does not have."""
        if path == "/v1/payment_intents" and method == "POST":
            return "payment_intent.create", ""
        if path == "/v1/refunds":
            return ("refund.create" if method == "POST" else "refund.list"), ""
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)(/cancel)?", path)
        if match and method == ("POST" if match.group(2) else "GET"):
            return ("payment_intent.cancel" if match.group(2) else "payment_intent.retrieve"), match.group(1)
        match = re.fullmatch(r"/v1/refunds/([^/]+)", path)
        if match and method == "GET":
            return "refund.retrieve", match.group(1)
        match = re.fullmatch(r"/v1/disputes/([^/]+)", path)
        if match and method == "GET":
            return "dispute.retrieve", match.group(1)
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).", saved=False)

    def handle(self, endpoint: str, object_id: str, params: dict) -> dict:
        if endpoint == "payment_intent.create":
            return self._create_intent(params)
        if endpoint == "payment_intent.retrieve":
            intent = self._intent(object_id)
            if params.get("client_secret") not in (None, intent["client_secret"]):
                raise StripeError(400, "The client_secret provided does not match.", param="client_secret")
            return intent
        if endpoint == "payment_intent.cancel":
            return self._cancel(self._intent(object_id), params.get("cancellation_reason"))
        if endpoint == "refund.create":
            return self._create_refund(params)
        if endpoint == "refund.list":
            return self._list_refunds(params)
        if endpoint == "dispute.retrieve":
            if object_id not in self.disputes:
                raise StripeError(404, f"No such dispute: '{object_id}'", code="resource_missing", param="id")
            return self.disputes[object_id]
        return self._refund(object_id)

    def _intent(self, intent_id: str) -> dict:
        if intent_id not in self.payment_intents:
            raise StripeError(
                404, f"No such payment_intent: '{intent_id}'", code="resource_missing", param="intent"
            )
        return self.payment_intents[intent_id]

    def _refund(self, refund_id: str) -> dict:
        if refund_id not in self.refunds:
            raise StripeError(404, f"No such refund: '{refund_id}'", code="resource_missing", param="id")
        return self.refunds[refund_id]

    def _create_intent(self, params: dict) -> dict:
        amount, currency = int(params["amount"]), params["currency"]
        if amount < minimum_charge(currency):  # parameter validation: not saved under the key
            raise StripeError(
                400, _too_small(amount, currency), code="amount_too_small", param="amount", saved=False
            )
        if amount > spec.MAXIMUM_AMOUNT:
            raise StripeError(
                400,
                "Amount must be no more than 99999999",
                code="amount_too_large",
                param="amount",
                saved=False,
            )
        intent_id = self.new_id("pi")
        chosen = params.get("payment_method_types") or params.get("allowed_payment_method_types")
        methods = chosen or ["card"]
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "allowed_payment_method_types": params.get("allowed_payment_method_types"),
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None if chosen else {"allow_redirects": "always", "enabled": True},
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": params.get("capture_method", "automatic_async"),
            "client_secret": f"{intent_id}_secret_{hashlib.sha256(intent_id.encode()).hexdigest()[:24]}",
            "confirmation_method": params.get("confirmation_method", "automatic"),
            "created": self.now(),
            "currency": currency,
            "customer": params.get("customer"),
            "customer_account": None,
            "description": params.get("description"),
            "excluded_payment_method_types": params.get("excluded_payment_method_types"),
            "hooks": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "managed_payments": None,
            "metadata": params.get("metadata") or {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_details": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {m: _method_options(m) for m in methods},
            "payment_method_types": methods,
            "payment_record": None,
            "presentment_details": None,
            "processing": None,
            "receipt_email": params.get("receipt_email"),
            "review": None,
            "setup_future_usage": params.get("setup_future_usage"),
            "shipping": None,
            "source": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": params.get("transfer_group"),
        }
        self.payment_intents[intent_id] = intent
        return intent

    def _cancel(self, intent: dict, reason: str | None) -> dict:
        cancelable = (
            "requires_payment_method",
            "requires_capture",
            "requires_confirmation",
            "requires_action",
        )
        if intent["status"] not in (*cancelable, "processing"):
            raise StripeError(
                400,
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be canceled: "
                + ", ".join(cancelable)
                + ", processing.",
                code="payment_intent_unexpected_state",
                extra={"payment_intent": _copy(intent)},
            )
        intent.update(status="canceled", cancellation_reason=reason, canceled_at=self.now())
        self._emit("payment_intent.canceled", intent)
        return intent

    def _new_charge(self, intent: dict, amount: int, currency: str, *, failed: tuple | None = None) -> dict:
        """A captured charge, or with ``failed`` = (code, message) a declined one (no money moved)."""
        charge_id = self.new_id("ch")
        payment_method = self.new_id("pm")
        fee = int(amount * 0.034) + 200
        txn = None if failed else self._balance(amount, currency, "charge", charge_id, fee=fee)
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "authorization_code": "123456",
            "balance_transaction": txn and txn["id"],
            "billing_details": _billing_details(),
            "calculated_statement_descriptor": "SHEQUN",
            "captured": True,
            "created": self.now(),
            "currency": currency,
            "customer": intent["customer"],
            "description": intent["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "fraud_details": {},
            "level3": None,
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "on_behalf_of": None,
            "outcome": {
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "risk_score": 32,
                "seller_message": "Payment complete.",
                "type": "authorized",
            },
            "paid": True,
            "payment_intent": intent["id"],
            "payment_method": payment_method,
            "payment_method_details": _card_details(amount),
            "presentment_details": None,
            "radar_options": None,
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{charge_id}",
            "refunded": False,
            "review": None,
            "shipping": None,
            "source": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded",
            "transfer": None,
            "transfer_data": None,
            "transfer_group": None,
        }
        if failed:
            charge.update(
                amount_captured=0,
                authorization_code=None,
                captured=False,
                failure_code=failed[0],
                failure_message=failed[1],
                paid=False,
                status="failed",
            )
            charge["outcome"].update(
                network_status="declined_by_network",
                reason="generic_decline",
                seller_message="The bank did not return any further details with this decline.",
                type="issuer_declined",
            )
        self.charges[charge_id] = charge
        return charge

    def _charge_view(self, charge: dict) -> dict:
        """The charge as Stripe answers it, with its ``refunds`` list."""
        refunds = [r for r in self.refunds.values() if r["charge"] == charge["id"]]
        url = f"/v1/charges/{charge['id']}/refunds"
        return {**charge, "refunds": {"object": "list", "data": refunds, "has_more": False, "url": url}}

    def _balance(self, amount: int, currency: str, type_: str, source: str, *, fee: int = 0) -> dict:
        txn_id = self.new_id("txn")
        txn = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": amount,
            "available_on": self.now() + 2 * 86400,
            "balance_type": "payments",
            "created": self.now(),
            "currency": currency,
            "description": None,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe fee",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else [],
            "net": amount - fee,
            "reporting_category": type_,
            "source": source,
            "status": "pending",
            "type": type_,
        }
        self.balance_transactions[txn_id] = txn
        return txn

    def _create_refund(self, params: dict, *, status: str | None = None) -> dict:
        """A refund of ``params`` (as decoded from the form); also called by tests directly."""
        if "payment_intent" in params:
            intent = self._intent(params["payment_intent"])
        elif "charge" in params:
            charge = self.charges.get(params["charge"])
            if charge is None:
                raise StripeError(
                    404, f"No such charge: '{params['charge']}'", code="resource_missing", param="charge"
                )
            intent = self._intent(charge["payment_intent"])
        else:
            raise StripeError(
                400,
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
                saved=False,
            )
        if intent["status"] != "succeeded":
            raise StripeError(
                400, "This PaymentIntent does not have a successful charge to refund.", param="payment_intent"
            )
        charge = self.charges[intent["latest_charge"]]
        if params.get("currency") not in (None, charge["currency"]):
            raise StripeError(400, "The currency does not match the charge's.", param="currency")
        if charge["disputed"] and not self._refundable_despite_dispute(charge):
            raise StripeError(
                400,
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            raise StripeError(
                400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        amount = int(params.get("amount", left))
        if amount < 1:
            raise StripeError(
                400, "Invalid positive integer", param="amount", code="parameter_invalid_integer"
            )
        if amount > left:
            raise StripeError(
                400,
                f"Refund amount ({_money(amount, charge['currency'])}) is greater than unrefunded amount "
                f"on charge ({_money(left, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        refund_id = self.new_id("re")
        status = status or self.refund_status
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "customer": None,
            "customer_account": None,
            "description": None,
            "destination_details": {
                "card": {"reference_status": "pending", "type": "refund"},
                "type": "card",
            },
            "failure_balance_transaction": None,
            "failure_reason": None,
            "instructions_email": params.get("instructions_email"),
            "metadata": params.get("metadata") or {},
            "next_action": None,
            "payment_intent": intent["id"],
            "payment_method": charge["payment_method"],
            "pending_reason": "processing" if status == "pending" else None,
            "presentment_details": None,
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": status,
            "transfer_reversal": None,
        }
        refund["balance_transaction"] = self._balance(-amount, charge["currency"], "refund", refund_id)["id"]
        self.refunds[refund_id] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("refund.created", refund)
        self._emit("charge.refunded", self._charge_view(charge))
        return refund

    def _refundable_despite_dispute(self, charge: dict) -> bool:
        disputes = [d for d in self.disputes.values() if d["charge"] == charge["id"]]
        return all(d["is_charge_refundable"] or d["status"] in ("won", "warning_closed") for d in disputes)

    def _view(self, obj: dict) -> dict:
        return self._charge_view(obj) if obj.get("object") == "charge" else obj

    def _list_refunds(self, params: dict) -> dict:
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            raise invalid(
                f"This value must be less than or equal to 100 (it currently is '{limit}').", "limit"
            )
        refunds = [
            r
            for r in sorted(self.refunds.values(), key=lambda r: r["id"], reverse=True)
            if params.get("payment_intent") in (None, r["payment_intent"])
            and params.get("charge") in (None, r["charge"])
        ]
        return {
            "object": "list",
            "data": refunds[:limit],
            "has_more": len(refunds) > limit,
            "url": "/v1/refunds",
        }


def _method_options(method: str) -> dict:
    """[fixtures] payment_method_options per type (the ones commerce offers; others empty)."""
    return {
        "card": {
            "installments": None,
            "mandate_options": None,
            "network": None,
            "request_three_d_secure": "automatic",
        },
        "alipay": {},
        "wechat_pay": {"app_id": None, "client": None},
    }.get(method, {})


def _evidence() -> dict:
    fields = [
        "access_activity_log",
        "billing_address",
        "cancellation_policy",
        "cancellation_policy_disclosure",
        "cancellation_rebuttal",
        "customer_communication",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "customer_signature",
        "duplicate_charge_documentation",
        "duplicate_charge_explanation",
        "duplicate_charge_id",
        "product_description",
        "receipt",
        "refund_policy",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "service_documentation",
        "shipping_address",
        "shipping_carrier",
        "shipping_date",
        "shipping_documentation",
        "shipping_tracking_number",
        "uncategorized_file",
        "uncategorized_text",
    ]
    return {**dict.fromkeys(fields), "enhanced_evidence": {}}


class _Handler(BaseHTTPRequestHandler):
    stripe: FakeStripe
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body leave in one send (flushed after each request)

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{next(self.stripe.ids):06d}")
        self.send_header("Stripe-Version", self.headers.get("Stripe-Version") or API_VERSION)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_DELETE(self):
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        split = urlsplit(self.path)
        params = decode_form(body if method == "POST" else split.query)
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        stripe = self.stripe
        entry = {
            "method": method,
            "path": split.path,
            "params": params,
            "query": dict(parse_qsl(split.query)),
            "idempotency_key": key,
            "stripe_version": self.headers.get("Stripe-Version"),
            "status": None,  # the answer's, once made
        }
        with stripe.lock:
            stripe.requests.append(entry)
            failure = stripe.failures.pop(0) if stripe.failures else None
            hang = stripe._take_hang(split.path)
        stripe.pause(stripe.latency)
        self._hang_before = hang["seconds"] if hang and not hang["after"] else 0
        status, answer, headers = self._respond(method, split.path, params, key, failure)
        entry["status"] = status
        stripe.pause(self._hang_before)  # when the request never reached the endpoint
        if hang and hang["after"]:
            stripe.pause(hang["seconds"])
        self._answer(status, answer, headers)

    def _executing(self) -> None:
        """The endpoint started (its key is in flight): a ``hang`` before the work sleeps here."""
        seconds, self._hang_before = self._hang_before, 0
        self.stripe.pause(seconds)

    def _respond(self, method, path, params, key, failure) -> tuple[int, dict, dict]:
        stripe = self.stripe
        api_key = _bearer(self.headers.get("Authorization") or "")
        if failure is not None and not failure[1]:  # refused before reaching the endpoint: not saved
            kind = "invalid_request_error" if failure[0] < 500 else "api_error"
            return failure[0], {"error": {"type": kind, "message": "Injected failure."}}, {}
        refusal = _auth_refusal(api_key)
        if refusal:
            return 401, refusal, {}
        version = self.headers.get("Stripe-Version") or API_VERSION
        scope = (api_key, key) if key else None
        with stripe.lock:
            try:
                endpoint, object_id = stripe.route(method, path)
                if key is not None and not 0 < len(key) <= spec.IDEMPOTENCY_KEY_MAX:
                    limit = spec.IDEMPOTENCY_KEY_MAX
                    raise invalid(f"Invalid idempotency key: keys must be 1 to {limit} characters long.")
                if scope and scope in stripe.in_flight:
                    raise StripeError(409, IN_USE, code="idempotency_key_in_use", saved=False)
                saved = stripe.idempotency.get(scope) if scope else None
                if saved and saved["created"] + spec.IDEMPOTENCY_TTL_SECONDS > stripe.now():
                    return self._replay(saved, method, path, params, key)
                validate(
                    endpoint, params, version=version, tolerate=stripe.tolerate, tolerated=stripe.tolerated
                )
                if scope:
                    stripe.in_flight.add(scope)
            except StripeError as exc:
                return exc.status, exc.body(), {}
        try:
            self._executing()
            if failure is not None:  # a 500 after the endpoint started: saved like Stripe's
                status, answer = failure[0], {"error": {"type": "api_error", "message": "Injected failure."}}
            else:
                with stripe.lock:
                    try:
                        status, answer = 200, _copy(stripe._view(stripe.handle(endpoint, object_id, params)))
                    except StripeError as exc:
                        status, answer = exc.status, exc.body()
                        if not exc.saved:
                            return status, answer, {}
            if scope:
                with stripe.lock:
                    stripe.idempotency[scope] = {
                        "method": method,
                        "path": path,
                        "params": params,
                        "status": status,
                        "answer": answer,
                        "created": stripe.now(),
                    }
            return status, answer, _retry_header(status)
        finally:
            if scope:
                with stripe.lock:
                    stripe.in_flight.discard(scope)

    def _replay(self, saved: dict, method, path, params, key) -> tuple[int, dict, dict]:
        if (saved["method"], saved["path"]) != (method, path):
            message = OTHER_ENDPOINT.format(
                first=f"{saved['method']} {saved['path']}", now=f"{method} {path}", key=key
            )
            return 400, {"error": {"type": "idempotency_error", "message": message}}, {}
        if saved["params"] != params:
            message = MISMATCH.format(key=key)
            return 400, {"error": {"type": "idempotency_error", "message": message}}, {}
        headers = {"Idempotent-Replayed": "true", **_retry_header(saved["status"])}
        return saved["status"], _copy(saved["answer"]), headers


def _bearer(header: str) -> str | None:
    if not header.startswith("Bearer ") or not header[7:].strip():
        return None
    return header[7:].strip()


def _auth_refusal(api_key: str | None) -> dict | None:
    """401's body for a missing key or one that is no test secret key (``sk_test_...``)."""
    if api_key is None:
        message = (
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    elif not api_key.startswith("sk_test_"):
        message = f"Invalid API Key provided: {api_key[:8]}{'*' * 8}"
    else:
        return None
    return {"error": {"type": "invalid_request_error", "message": message}}


def _retry_header(status: int) -> dict:
    """Stripe says not to retry an answer its idempotency layer would replay anyway."""
    return {"Stripe-Should-Retry": "false"} if status >= 500 else {}
