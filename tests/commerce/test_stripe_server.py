"""The local Stripe server answers as Stripe does, proved through the official ``stripe`` library."""

import threading
import time

import pytest
import stripe

from tests.commerce import stripe_spec as spec
from tests.commerce.stripe_server import API_VERSION, STRIPE_TOLERATE, FakeStripe

# No rows of ours; the suite's session fixtures still load shipped data into the test database.
pytestmark = pytest.mark.django_db

DAHLIA = "2026-08-26.dahlia"  # the last version that still takes payment_method_types
INTENT = {"amount": 5000, "currency": "cny", "metadata": {"order_id": "7"}, "description": "订单 7"}


@pytest.fixture
def server():
    fake = FakeStripe()
    fake.start()
    yield fake
    fake.stop()


def client_for(server, *, key="sk_test_local", retries=0, timeout=5.0) -> stripe.StripeClient:
    return stripe.StripeClient(
        key,
        base_addresses={"api": server.base_url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


@pytest.fixture
def client(server):
    return client_for(server)


def create(client, options=None, **params):
    return client.v1.payment_intents.create(params={**INTENT, **params}, options=options or {})


def paid_intent(server, client, amount=5000):
    intent = create(client, amount=amount)
    server.succeed(intent.id)
    return intent.id


def refused(call, error=stripe.InvalidRequestError):
    with pytest.raises(error) as caught:
        call()
    return caught.value


# --- parameters ---------------------------------------------------------------------------------
def test_an_unknown_parameter_is_refused_and_nothing_is_created(server, client):
    error = refused(lambda: create(client, colour="red"))

    assert (error.http_status, error.code, error.param) == (400, "parameter_unknown", "colour")
    assert error.user_message == "Received unknown parameter: colour" and not server.payment_intents
    assert error.error.doc_url.endswith("/parameter-unknown")


@pytest.mark.parametrize("missing", ["amount", "currency"])
def test_a_missing_required_parameter_is_refused(client, missing):
    params = {k: v for k, v in INTENT.items() if k != missing}

    error = refused(lambda: client.v1.payment_intents.create(params=params))

    assert (error.http_status, error.code, error.param) == (400, "parameter_missing", missing)


def test_an_amount_that_is_no_integer_is_refused(client):
    error = refused(lambda: create(client, amount="12.50"))

    assert (error.code, error.param) == ("parameter_invalid_integer", "amount")


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda c, i: c.v1.refunds.create(params={"payment_intent": i, "reason": "mind"}), "reason"),
        (lambda c, i: c.v1.payment_intents.cancel(i, params={"cancellation_reason": "x"}), "cancellation_"
         "reason"),
        (lambda c, i: create(c, capture_method="later"), "capture_method"),
        (lambda c, i: create(c, allowed_payment_method_types=["bitcoin"]), "allowed_payment_method_types[0]"),
    ],
)  # fmt: skip
def test_a_value_outside_the_enum_is_refused(server, client, call, param):
    intent_id = paid_intent(server, client) if param == "reason" else create(client).id

    error = refused(lambda: call(client, intent_id))

    assert error.http_status == 400 and error.param == param and "must be one of" in error.user_message


def test_payment_method_types_is_refused_from_endive_and_taken_before(server, client):
    error = refused(lambda: create(client, payment_method_types=["card", "wechat_pay"]))
    older = create(client, {"stripe_version": DAHLIA}, payment_method_types=["card", "wechat_pay"])
    bad = refused(lambda: create(client, {"stripe_version": DAHLIA}, payment_method_types=["bitcoin"]))

    assert API_VERSION >= "2026-09-30" and server.calls("POST", "/v1/")[0]["stripe_version"] == API_VERSION
    assert (error.code, error.param) == ("payment_method_types_no_longer_supported", "payment_method_types")
    assert older.payment_method_types == ["card", "wechat_pay"] and bad.param == "payment_method_types[0]"
    allowed = create(client, allowed_payment_method_types=["card", "alipay"])
    assert allowed.payment_method_types == ["card", "alipay"] and allowed.automatic_payment_methods is None


def test_a_tolerated_refusal_is_let_through_and_logged():
    fake = FakeStripe(tolerate=STRIPE_TOLERATE)
    fake.start()
    try:
        intent = create(client_for(fake), payment_method_types=["card"])
    finally:
        fake.stop()

    assert intent.status == "requires_payment_method"
    assert fake.tolerated == [
        {
            "endpoint": "payment_intent.create",
            "param": "payment_method_types",
            "code": "payment_method_types_no_longer_supported",
        }
    ]


@pytest.mark.parametrize(
    ("currency", "minimum"),
    [("usd", 50), ("hkd", 400), ("jpy", 50), ("gbp", 30), ("cny", 355)],  # cny: $0.50 at 7.10
)
def test_an_amount_under_the_currency_minimum_is_refused(client, currency, minimum):
    error = refused(lambda: create(client, amount=minimum - 1, currency=currency))

    assert (error.http_status, error.code, error.param) == (400, "amount_too_small", "amount")
    assert create(client, amount=minimum, currency=currency).amount == minimum


def test_a_currency_outside_the_table_says_what_it_converts_to(server, client):
    error = refused(lambda: create(client, {"idempotency_key": "k-small"}, amount=300))

    assert (
        error.user_message
        == "Amount must convert to at least 50 cents. 3.00 cny converts to approximately $0.42."
    )
    assert create(client, {"idempotency_key": "k-small"}, amount=300 + 55).amount == 355  # nothing was saved


def test_an_amount_over_eight_digits_is_refused(client):
    assert refused(lambda: create(client, amount=100_000_000)).code == "amount_too_large"


@pytest.mark.parametrize("currency", ["CNY", "yuan", "xyz"])
def test_a_currency_must_be_a_supported_lowercase_iso_code(client, currency):
    error = refused(lambda: create(client, currency=currency))

    assert error.param == "currency" and error.user_message.startswith(f"Invalid currency: {currency}")


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({f"k{i}": "v" for i in range(51)}, "metadata"),
        ({"k" * 41: "v"}, "metadata[" + "k" * 41 + "]"),
        ({"note": "v" * 501}, "metadata[note]"),
    ],
)
def test_metadata_over_stripes_limits_is_refused(client, metadata, param):
    assert refused(lambda: create(client, metadata=metadata)).param == param


def test_metadata_at_stripes_limits_is_taken(client):
    metadata = {f"{i:02d}" + "k" * 38: "v" * 500 for i in range(50)}

    assert create(client, metadata=metadata).metadata.to_dict() == metadata


def test_a_description_over_1000_characters_is_refused(client):
    assert refused(lambda: create(client, description="长" * 1001)).param == "description"
    assert create(client, description="长" * 1000).description == "长" * 1000


def test_a_refund_list_limit_over_100_is_refused(server, client):
    intent_id = paid_intent(server, client)

    assert refused(
        lambda: client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 101})
    ).param == ("limit")


# --- authentication and missing resources ---------------------------------------------------------
@pytest.mark.parametrize("key", ["rk_wrong", "pk_test_public"])
def test_a_bad_api_key_is_401(server, key):
    error = refused(lambda: create(client_for(server, key=key)), stripe.AuthenticationError)

    assert error.http_status == 401 and "Invalid API Key" in error.user_message and not server.payment_intents


def test_no_api_key_is_401(server):
    import requests

    response = requests.post(
        f"{server.base_url}/v1/payment_intents", data={"amount": 5000, "currency": "cny"}, timeout=5
    )

    assert response.status_code == 401 and "did not provide an API key" in response.json()["error"]["message"]


def test_an_unknown_object_is_404_resource_missing(client):
    for call in (
        lambda: client.v1.payment_intents.retrieve("pi_missing"),
        lambda: client.v1.refunds.retrieve("re_missing"),
        lambda: client.v1.refunds.create(params={"payment_intent": "pi_missing"}),
    ):
        error = refused(call)
        assert (error.http_status, error.code) == (404, "resource_missing")


def test_a_refund_names_its_payment(client):
    error = refused(lambda: client.v1.refunds.create(params={"amount": 100}))

    assert (error.http_status, error.code) == (400, "parameter_missing")


# --- state -------------------------------------------------------------------------------------
def test_a_refund_beyond_the_charge_is_amount_too_large_then_charge_already_refunded(server, client):
    intent_id = paid_intent(server, client, amount=5000)

    too_large = refused(
        lambda: client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 5001})
    )
    client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 3000})
    rest = client.v1.refunds.create(params={"payment_intent": intent_id})
    again = refused(lambda: client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1}))

    assert (too_large.code, too_large.param) == ("amount_too_large", "amount") and rest.amount == 2000
    assert again.code == "charge_already_refunded"
    listed = client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
    assert sorted(r.amount for r in listed.data) == [2000, 3000]
    assert client.v1.refunds.retrieve(rest.id).amount == 2000


def test_a_succeeded_payment_cannot_be_cancelled(server, client):
    intent_id = paid_intent(server, client)

    error = refused(
        lambda: client.v1.payment_intents.cancel(intent_id, params={"cancellation_reason": "abandoned"})
    )

    assert (error.http_status, error.code) == (400, "payment_intent_unexpected_state")
    assert error.json_body["error"]["payment_intent"]["status"] == "succeeded"


def test_a_cancelled_payment_says_why_and_when(client):
    intent = create(client)

    cancelled = client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "abandoned"})

    assert (
        cancelled.status == "canceled"
        and cancelled.cancellation_reason == "abandoned"
        and cancelled.canceled_at
    )


def test_a_disputed_charge_cannot_be_refunded_until_the_dispute_is_won(server, client):
    intent_id = paid_intent(server, client)
    dispute = server.open_dispute(intent_id)

    error = refused(lambda: client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 100}))
    server.close_dispute(dispute["id"], won=True)

    assert error.code == "charge_disputed"
    assert client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 100}).status == "succeeded"


# --- idempotency ---------------------------------------------------------------------------------
def test_the_same_key_and_parameters_replay_the_first_answer(server, client):
    first = create(client, {"idempotency_key": "k1"})
    again = create(client, {"idempotency_key": "k1"})

    assert again.id == first.id and len(server.payment_intents) == 1
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers


def test_the_same_key_with_other_parameters_is_an_idempotency_error(server, client):
    create(client, {"idempotency_key": "k2"})

    error = refused(lambda: create(client, {"idempotency_key": "k2"}, amount=6000), stripe.IdempotencyError)
    other = refused(
        lambda: client.v1.refunds.create(
            params={"payment_intent": "pi_x"}, options={"idempotency_key": "k2"}
        ),
        stripe.IdempotencyError,
    )

    assert error.http_status == 400 and "same parameters" in error.user_message
    assert "same endpoint" in other.user_message and len(server.payment_intents) == 1


def test_an_idempotency_key_over_255_characters_is_refused(server, client):
    refused(lambda: create(client, {"idempotency_key": "k" * 256}))

    assert not server.payment_intents and create(client, {"idempotency_key": "k" * 255}).amount == 5000


def test_a_saved_500_is_replayed_for_24_hours(server):
    client = client_for(server, retries=2)
    server.fail_next(500)

    first = refused(lambda: create(client, {"idempotency_key": "k3"}), stripe.APIError)
    again = refused(lambda: create(client, {"idempotency_key": "k3"}), stripe.APIError)

    assert first.http_status == again.http_status == 500 and not server.payment_intents
    assert len(server.calls("POST", "/v1/payment_intents")) == 2  # Stripe-Should-Retry: false
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert create(client, {"idempotency_key": "fresh"}).status == "requires_payment_method"
    server.advance(spec.IDEMPOTENCY_TTL_SECONDS + 1)
    assert create(client, {"idempotency_key": "k3"}).status == "requires_payment_method"


def test_an_error_of_an_executed_request_is_saved_but_a_validation_error_is_not(server, client):
    intent_id = paid_intent(server, client, amount=5000)
    params = {"payment_intent": intent_id, "amount": 9000}

    refused(lambda: client.v1.refunds.create(params=params, options={"idempotency_key": "k4"}))
    replayed = refused(lambda: client.v1.refunds.create(params=params, options={"idempotency_key": "k4"}))
    refused(lambda: create(client, {"idempotency_key": "k5"}, colour="red"))

    assert replayed.code == "amount_too_large" and replayed.headers["Idempotent-Replayed"] == "true"
    assert create(client, {"idempotency_key": "k5"}).status == "requires_payment_method"


def test_a_503_is_not_saved_and_the_same_key_then_succeeds(server, client):
    server.fail_next(503)

    refused(lambda: create(client, {"idempotency_key": "k6"}), stripe.APIError)

    assert create(client, {"idempotency_key": "k6"}).amount == 5000 and len(server.payment_intents) == 1


def test_a_concurrent_request_with_the_same_key_is_409_in_use(server, client):
    server.hang(1.0, path="/v1/payment_intents")
    first = {}
    worker = threading.Thread(target=lambda: first.update(intent=create(client, {"idempotency_key": "k7"})))
    worker.start()
    time.sleep(0.2)

    error = refused(lambda: create(client, {"idempotency_key": "k7"}), stripe.APIError)  # the library's 409
    worker.join()

    assert (error.http_status, error.json_body["error"]["code"]) == (409, "idempotency_key_in_use")
    assert first["intent"].id in server.payment_intents and len(server.payment_intents) == 1


# --- faults and latency --------------------------------------------------------------------------
def test_a_hang_makes_the_client_time_out(server):
    client = client_for(server, timeout=0.3)
    server.hang(3, path="/v1/payment_intents")

    started = time.monotonic()
    refused(lambda: create(client), stripe.APIConnectionError)

    assert time.monotonic() - started < 2 and not server.payment_intents
    assert create(client).status == "requires_payment_method"  # the next request is answered


def test_a_hang_after_the_work_loses_only_the_answer(server):
    client = client_for(server, timeout=0.3)
    server.hang(2, path="/v1/refunds", after=True)
    intent_id = paid_intent(server, client)

    refused(
        lambda: client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 100}),
        stripe.APIConnectionError,
    )

    assert [r["amount"] for r in server.refunds.values()] == [100]
    assert client.v1.payment_intents.retrieve(intent_id).status == "succeeded"  # other paths answer


def test_slow_adds_latency_to_every_answer(server, client):
    server.slow(0.15)

    started = time.monotonic()
    intent = create(client)
    client.v1.payment_intents.retrieve(intent.id)

    assert time.monotonic() - started >= 0.3


def test_answers_on_a_kept_alive_connection_have_no_nagle_stall(server, client):
    intent = create(client)
    client.v1.payment_intents.retrieve(intent.id)  # warm the pooled connection

    started = time.monotonic()
    for _ in range(20):
        client.v1.payment_intents.retrieve(intent.id)

    assert (time.monotonic() - started) / 20 < 0.02  # a Nagle / delayed-ACK stall costs ~40 ms each


# --- complete objects and events -----------------------------------------------------------------
def _declared_fields(resource) -> set[str]:
    """Every top-level field the library (generated from the OpenAPI spec) declares."""
    return {name for name in resource.__annotations__ if name != "OBJECT_NAME"}


@pytest.mark.parametrize(
    ("params", "table"),
    [
        (stripe.params.PaymentIntentCreateParams, spec.PAYMENT_INTENT_CREATE),
        (stripe.params.PaymentIntentRetrieveParams, spec.PAYMENT_INTENT_RETRIEVE),
        (stripe.params.PaymentIntentCancelParams, spec.PAYMENT_INTENT_CANCEL),
        (stripe.params.RefundCreateParams, spec.REFUND_CREATE),
        (stripe.params.RefundListParams, spec.REFUND_LIST),
        (stripe.params.RefundRetrieveParams, spec.REFUND_RETRIEVE),
    ],
)
def test_the_parameter_tables_are_the_libraries(params, table):
    """The library's parameters (generated from the spec) besides its request options; plus removed ones."""
    from stripe._request_options import RequestOptions

    removed = {name for endpoint, name in spec.REMOVED_PARAMETERS}
    assert set(params.__annotations__) - set(RequestOptions.__annotations__) == set(table) - removed


@pytest.mark.parametrize(
    ("name", "resource"),
    [
        ("payment_intent", stripe.PaymentIntent),
        ("charge", stripe.Charge),
        ("refund", stripe.Refund),
        ("dispute", stripe.Dispute),
        ("balance_transaction", stripe.BalanceTransaction),
    ],
)
def test_the_field_table_is_the_libraries(name, resource):
    assert spec.OBJECT_FIELDS[name] == _declared_fields(resource)


def test_every_object_carries_every_field_of_stripes(server, client):
    intent = create(client)
    server.succeed(intent.id)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    dispute = server.open_dispute(intent.id)
    charge = server.charge_of(intent.id)

    assert set(intent.to_dict()) == spec.OBJECT_FIELDS["payment_intent"]
    assert (
        set(client.v1.payment_intents.retrieve(intent.id).to_dict()) == spec.OBJECT_FIELDS["payment_intent"]
    )
    assert set(refund.to_dict()) == spec.OBJECT_FIELDS["refund"]
    assert set(charge) == spec.OBJECT_FIELDS["charge"] and charge["refunds"]["data"][0]["id"] == refund.id
    assert set(dispute) == spec.OBJECT_FIELDS["dispute"]
    assert set(dispute["balance_transactions"][0]) == spec.OBJECT_FIELDS["balance_transaction"]
    assert charge["balance_transaction"] in server.balance_transactions


def test_state_changes_queue_the_events_stripe_sends(server, client):
    paid = paid_intent(server, client)
    failed = create(client).id
    server.fail(failed)
    server.cancel_at_provider(failed)
    refund = client.v1.refunds.create(params={"payment_intent": paid, "amount": 100})
    server.set_refund_status(refund.id, "failed")

    assert [t for t, _ in server.take_events()] == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.failed",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "refund.created",
        "charge.refunded",
        "refund.updated",
        "refund.failed",
        "charge.refund.updated",
    ]
    assert server.refunds[refund.id]["failure_reason"] and not server.take_events()


def test_a_declined_payment_leaves_a_failed_charge(server, client):
    intent = create(client)

    failed = server.fail(intent.id, code="card_declined")
    charge = server.charge_of(intent.id)

    assert failed["last_payment_error"]["charge"] == charge["id"] == failed["latest_charge"]
    assert (charge["status"], charge["paid"], charge["failure_code"]) == ("failed", False, "card_declined")
    assert charge["balance_transaction"] is None and set(charge) == spec.OBJECT_FIELDS["charge"]
    assert [t for t, _ in server.take_events()] == ["charge.failed", "payment_intent.payment_failed"]
    assert refused(lambda: client.v1.refunds.create(params={"payment_intent": intent.id})).http_status == 400


def test_a_dispute_withdraws_then_reinstates_when_won(server, client):
    intent_id = paid_intent(server, client, amount=5000)
    server.take_events()

    dispute = server.open_dispute(intent_id)
    server.update_dispute(dispute["id"])
    won = server.close_dispute(dispute["id"], won=True)
    events = server.take_events()

    assert [t for t, _ in events] == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    assert events[0][1]["status"] == "needs_response" and won["status"] == "won"
    assert [t["amount"] for t in won["balance_transactions"]] == [-5000, 5000]
    assert [t["net"] for t in won["balance_transactions"]] == [-6500, 6500]  # the 15.00 fee comes back
    assert server.charge_of(intent_id)["disputed"] is True


def test_a_lost_dispute_keeps_the_money_withdrawn(server, client):
    intent_id = paid_intent(server, client)
    dispute = server.open_dispute(intent_id, amount=2000, reason="product_not_received")

    lost = server.close_dispute(dispute["id"], won=False)

    assert lost["status"] == "lost" and [t["amount"] for t in lost["balance_transactions"]] == [-2000]
    assert [t for t, _ in server.take_events("charge.dispute.closed", "charge.dispute.funds_reinstated")] == [
        "charge.dispute.closed"
    ]


def test_a_signed_event_verifies_with_the_library_and_is_complete(server, client):
    intent_id = paid_intent(server, client)
    [(event_type, obj)] = server.take_events("payment_intent.succeeded")

    payload, header = server.signed_event(event_type, obj, "whsec_test")
    event = stripe.Webhook.construct_event(payload, header, "whsec_test")

    assert set(event.to_dict()) == spec.OBJECT_FIELDS["event"] and event.api_version == API_VERSION
    assert event.data.object.id == intent_id and event.type == "payment_intent.succeeded"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")
