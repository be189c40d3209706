"""SubscriptionClient.create against the real gateway and simulator: what a caller gets back on
success, on a replay, and on each kind of error, with the details decoded."""

import datetime
import re
import uuid

import grpc
import pytest

from conftest import CALL_SID, CALLBACK
from twilio_gateway_client import FieldViolation, GatewayError, TwilioError, new_idempotency_key


def test_create_returns_the_subscription_and_the_key_it_generated(client):
    created = client.create(CALL_SID, CALLBACK, method="GET", timeout=10)

    subscription = created.subscription
    assert re.fullmatch(r"ZY[0-9a-f]{32}", subscription.sid)
    assert subscription.call_sid == CALL_SID
    assert re.fullmatch(r"AC[0-9a-f]{32}", subscription.account_sid)
    assert subscription.uri.endswith(f"/UserDefinedMessageSubscriptions/{subscription.sid}.json")
    assert subscription.HasField("date_created")
    assert uuid.UUID(subscription.idempotency_key).version == 4
    assert not created.replayed
    assert created.request_id


def test_a_retry_with_the_same_key_replays_the_first_answer(client, fixture):
    key = new_idempotency_key()
    first = client.create(CALL_SID, CALLBACK, idempotency_key=key)
    second = client.create(CALL_SID, CALLBACK, idempotency_key=key)

    assert second.subscription == first.subscription
    assert (first.replayed, second.replayed) == (False, True)
    assert second.request_id != first.request_id
    # The replay came from the gateway's record: Twilio saw the key once.
    assert fixture.sim_key_stats(key) == {"requests": 1, "subscriptions": 1}


def test_an_invalid_request_names_the_field_and_asks_for_a_new_key(client, fixture):
    key = new_idempotency_key()
    with pytest.raises(GatewayError) as raised:
        client.create("CA-not-a-call", CALLBACK, idempotency_key=key)

    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_REQUEST"
    assert [v.field for v in error.field_violations] == ["call_sid"]
    assert error.field_violations[0].description
    assert isinstance(error.field_violations[0], FieldViolation)
    assert error.idempotency_key == key
    assert error.next_step == "fix the request and use a new key: retrying this one cannot succeed"
    assert fixture.sim_key_stats(key)["requests"] == 0


def test_what_twilio_answered_is_decoded(client, fixture):
    missing = "CA00000000000000000000000000000404"
    fixture.sim("PUT", f"/_sim/calls/{missing}", {"state": "missing"})
    with pytest.raises(GatewayError) as raised:
        client.create(missing, CALLBACK)

    error = raised.value
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.reason == "CALL_NOT_FOUND"
    assert isinstance(error.twilio_error, TwilioError)
    assert (error.twilio_error.code, error.twilio_error.http_status) == (20404, 404)
    assert error.twilio_error.more_info.startswith("https://")
    assert error.metadata["idempotency_key"] == error.idempotency_key
    assert error.metadata["attempts"] == "1"
    assert error.subscription_may_exist is False
    assert error.next_step == "retrying with it changes nothing until the cause is fixed"


def test_throttling_carries_when_to_retry(client, fixture):
    throttled = "CA00000000000000000000000000000429"
    fixture.sim("POST", "/_sim/faults",
                {"rules": [{"status": 429, "retry_after": "1", "call_sid": throttled}]})
    with pytest.raises(GatewayError) as raised:
        client.create(throttled, CALLBACK)

    error = raised.value
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "TWILIO_THROTTLED"
    assert error.retry_delay == datetime.timedelta(seconds=1)
    assert error.twilio_error is not None and error.twilio_error.code == 20429
    assert error.next_step == "retry with it to repeat this create safely"


def test_a_deadline_raises_with_the_key_and_a_retry_with_it_creates_once(client, fixture):
    fixture.sim("POST", "/_sim/config", {"delay_ms": 2000})
    try:
        with pytest.raises(GatewayError) as raised:
            client.create(CALL_SID, CALLBACK, timeout=0.5)
    finally:
        fixture.sim("POST", "/_sim/config", {"delay_ms": 0})

    error = raised.value
    # The caller's own deadline, or the gateway's answer just before it that the request may
    # have created the subscription and is being resolved: both say retry with the key.
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED or (
        error.code == grpc.StatusCode.UNAVAILABLE and error.reason == "OUTCOME_RESOLVING"
    ), error
    # Generated before sending, so known although no answer came back.
    assert uuid.UUID(error.idempotency_key).version == 4
    assert error.subscription_may_exist
    assert error.next_step == "retry with it to repeat this create safely"

    retried = client.create(CALL_SID, CALLBACK, idempotency_key=error.idempotency_key, timeout=10)
    assert retried.subscription.idempotency_key == error.idempotency_key
    assert fixture.sim_key_stats(error.idempotency_key)["subscriptions"] == 1
