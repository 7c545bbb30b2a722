"""A local Stripe-compatible HTTP server for the tests: the real ``stripe`` library talks to it.

It implements the endpoints commerce calls, with Stripe's wire format:
form-encoded request bodies (``metadata[order_id]=1``,
``payment_method_types[0]=card``), bearer-key auth, the ``Idempotency-Key``
header (a repeated key replays the first answer; the same key with other
parameters is an ``idempotency_error``), Stripe-shaped JSON objects and error
bodies. Tests drive the customer's side with ``succeed`` / ``fail`` and
build webhook deliveries signed exactly as Stripe signs them.
"""

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2025-09-30.clover"
IDEMPOTENCY_MISMATCH = "Keys for idempotent requests can only be used with the same parameters."


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


class StripeError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", code: str = ""):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code


class FakeStripe:
    """The server's state and the test-side controls. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.payment_intents: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, int, dict]] = {}
        self.requests: list[dict] = []
        self.failures: list[int] = []  # statuses to answer the next requests with
        self.refund_status = "succeeded"  # what new refunds start as ("pending" like some wallets)
        self.server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"stripe": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self.base_url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_test{next(self.ids):06d}"

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these HTTP error statuses (e.g. 503, 500)."""
        with self.lock:
            self.failures.extend(statuses)

    def calls(self, method: str, path_prefix: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path_prefix)]

    # --- the customer's side -----------------------------------------------------------------
    def succeed(
        self, intent_id: str, *, amount_received: int | None = None, currency: str | None = None
    ) -> dict:
        """The customer paid: the intent succeeds with a captured charge. Returns the intent."""
        with self.lock:
            intent = self.payment_intents[intent_id]
            amount = intent["amount"] if amount_received is None else amount_received
            charge_id = self.new_id("ch")
            self.charges[charge_id] = {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "captured": True,
                "currency": currency or intent["currency"],
                "metadata": dict(intent["metadata"]),
                "paid": True,
                "payment_intent": intent_id,
                "refunded": False,
                "status": "succeeded",
                "created": int(time.time()),
                "livemode": False,
            }
            intent.update(
                status="succeeded",
                amount_received=amount,
                latest_charge=charge_id,
                currency=currency or intent["currency"],
            )
            return json.loads(json.dumps(intent))

    def fail(
        self, intent_id: str, *, code: str = "card_declined", message: str = "Your card was declined."
    ) -> dict:
        with self.lock:
            intent = self.payment_intents[intent_id]
            intent.update(
                status="requires_payment_method",
                last_payment_error={"code": code, "decline_code": "generic_decline", "message": message},
            )
            return json.loads(json.dumps(intent))

    def charge_of(self, intent_id: str) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.charges[self.payment_intents[intent_id]["latest_charge"]]))

    def refund_at_provider(self, intent_id: str, amount: int, *, status: str | None = None) -> dict:
        """A refund made outside our API (the Stripe dashboard): no metadata of ours."""
        with self.lock:
            return self._create_refund({"payment_intent": intent_id, "amount": str(amount)}, status=status)

    def set_refund_status(self, refund_id: str, status: str) -> dict:
        with self.lock:
            refund = self.refunds[refund_id]
            charge = self.charges[refund["charge"]]
            if refund["status"] in ("pending", "succeeded") and status in ("failed", "canceled"):
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = False
            refund["status"] = status
            return json.loads(json.dumps(refund))

    # --- webhooks ------------------------------------------------------------------------------
    def event(self, event_type: str, obj: dict, *, event_id: str | None = None) -> str:
        """A webhook payload (JSON text) exactly as Stripe sends it."""
        return json.dumps(
            {
                "id": event_id or self.new_id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": int(time.time()),
                "data": {"object": obj},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )

    # --- the API ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, params: dict) -> dict:
        if method == "POST" and path == "/v1/payment_intents":
            return self._create_intent(params)
        match = re.fullmatch(r"/v1/payment_intents/([\w]+)(/cancel)?", path)
        if match and method == "GET" and not match.group(2):
            return self._intent(match.group(1))
        if match and method == "POST" and match.group(2):
            intent = self._intent(match.group(1))
            if intent["status"] == "succeeded":
                raise StripeError(
                    400, "This PaymentIntent has already succeeded.", code="payment_intent_unexpected_state"
                )
            intent["status"] = "canceled"
            intent["cancellation_reason"] = params.get("cancellation_reason")
            return intent
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        if method == "GET" and path == "/v1/refunds":
            refunds = [r for r in self.refunds.values() if r["payment_intent"] == query.get("payment_intent")]
            return {"object": "list", "data": refunds, "has_more": False, "url": "/v1/refunds"}
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    def _intent(self, intent_id: str) -> dict:
        if intent_id not in self.payment_intents:
            raise StripeError(404, f"No such payment_intent: '{intent_id}'", code="resource_missing")
        return self.payment_intents[intent_id]

    def _create_intent(self, params: dict) -> dict:
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            raise StripeError(400, "Missing required param: amount.", code="parameter_missing") from None
        if amount < 1:
            raise StripeError(400, "Amount must be at least 1 fen.", code="amount_too_small")
        intent_id = self.new_id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "client_secret": f"{intent_id}_secret_{next(self.ids):04d}",
            "currency": params.get("currency"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "payment_method_types": params.get("payment_method_types", []),
            "status": "requires_payment_method",
            "latest_charge": None,
            "last_payment_error": None,
            "created": int(time.time()),
            "livemode": False,
        }
        self.payment_intents[intent_id] = intent
        return intent

    def _create_refund(self, params: dict, *, status: str | None = None) -> dict:
        intent = self._intent(params.get("payment_intent", ""))
        if intent["status"] != "succeeded":
            raise StripeError(400, "This PaymentIntent does not have a successful charge to refund.")
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount", left))
        if amount < 1 or amount > left:
            raise StripeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large",
            )
        refund_id = self.new_id("re")
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "metadata": params.get("metadata", {}),
            "payment_intent": intent["id"],
            "reason": params.get("reason"),
            "status": status or self.refund_status,
            "created": int(time.time()),
        }
        self.refunds[refund_id] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return refund


class _Handler(BaseHTTPRequestHandler):
    stripe: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{int(time.time() * 1000)}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        split = urlsplit(self.path)
        query, params = dict(parse_qsl(split.query)), decode_form(body)
        key = self.headers.get("Idempotency-Key")
        stripe = self.stripe
        with stripe.lock:
            stripe.requests.append(
                {
                    "method": method,
                    "path": split.path,
                    "params": params,
                    "query": query,
                    "idempotency_key": key,
                }
            )
            failure = stripe.failures.pop(0) if stripe.failures else None
        if failure is not None:
            self._answer(failure, {"error": {"type": "api_error", "message": "Injected failure."}})
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer sk_"):
            self._answer(
                401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}}
            )
            return
        with stripe.lock:
            if method == "POST" and key and (key, split.path) in stripe.idempotency:
                fingerprint, status, answer = stripe.idempotency[(key, split.path)]
                if fingerprint != body:
                    status, answer = (
                        400,
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": IDEMPOTENCY_MISMATCH,
                            }
                        },
                    )
                self._answer(status, json.loads(json.dumps(answer)), {"Idempotent-Replayed": "true"})
                return
            try:
                status, answer = 200, stripe.handle(method, split.path, query, params)
            except StripeError as exc:
                status = exc.status
                answer = {"error": {"type": exc.type, "message": exc.message, "code": exc.code}}
            answer = json.loads(json.dumps(answer))
            if method == "POST" and key:
                stripe.idempotency[(key, split.path)] = (body, status, answer)
        self._answer(status, answer)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")
