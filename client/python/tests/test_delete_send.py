"""SubscriptionClient.delete and .send, and `subscription-cli delete|send`, against the real gateway
and simulator, by the contract (proto/twilio_gateway/v1/*.proto)."""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest

from conftest import CALL_SID, CALLBACK
from twilio_gateway_client import GatewayError, new_idempotency_key

CLI = str(Path(sys.executable).parent / "subscription-cli")


def message_stats(fixture, key):
    """Requests the simulator received with this message key, and messages it sent for it."""
    counts = {"requests": 0, "messages": 0}
    for stats_key, stats in fixture.sim("GET", "/_sim/stats")["messages_by_key"].items():
        if stats_key.rpartition("/")[2] == key:
            counts = {name: counts[name] + stats[name] for name in counts}
    return counts


def test_delete_removes_the_subscription_and_a_second_delete_is_not_found(client, fixture):
    sid = client.create(CALL_SID, CALLBACK).subscription.sid
    deleted = client.delete(CALL_SID, sid)
    assert deleted.request_id
    assert [s["deleted"] for s in fixture.sim("GET", "/_sim/subscriptions")["subscriptions"]
            if s["sid"] == sid] == [True]

    with pytest.raises(GatewayError) as raised:
        client.delete(CALL_SID, sid)
    error = raised.value
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.twilio_error is not None and error.twilio_error.code == 20404
    assert error.operation == "delete" and error.idempotency_key == ""
    assert error.next_step == "there is no such subscription, call or account: do not retry"


def test_a_delete_whose_answer_was_lost_succeeds(client, fixture):
    sid = client.create(CALL_SID, CALLBACK).subscription.sid
    fixture.sim("POST", "/_sim/faults",
                {"rules": [{"operation": "delete", "drop": "after", "count": 1}]})
    try:
        client.delete(CALL_SID, sid)
    finally:
        fixture.sim("DELETE", "/_sim/faults")


def test_a_malformed_subscription_sid_is_refused_by_name(client):
    with pytest.raises(GatewayError) as raised:
        client.delete(CALL_SID, "ZY-not-a-sid")
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in raised.value.field_violations] == ["sid"]


def test_send_returns_the_message_and_the_same_key_sends_once(client, fixture):
    key = new_idempotency_key()
    first = client.send(CALL_SID, json.dumps({"text": "hi"}), idempotency_key=key)
    assert re.fullmatch(r"KX[0-9a-f]{32}", first.message.sid)
    assert (first.message.call_sid, first.message.idempotency_key) == (CALL_SID, key)
    assert first.message.HasField("date_created")
    assert first.request_id and not first.replayed

    second = client.send(CALL_SID, json.dumps({"text": "hi"}), idempotency_key=key)
    assert second.message == first.message and second.replayed
    assert message_stats(fixture, key) == {"requests": 1, "messages": 1}


def test_send_generates_the_key_before_sending(client):
    sent = client.send(CALL_SID, "[1, 2]")
    assert uuid.UUID(sent.message.idempotency_key).version == 4


def test_send_through_lost_answers_sends_exactly_once(client, fixture):
    key = new_idempotency_key()
    fixture.sim("POST", "/_sim/faults", {"rules": [
        {"operation": "send", "idempotency_key": key, "status": 500, "after_record": True,
         "count": 1}]})
    try:
        sent = client.send(CALL_SID, "{}", idempotency_key=key)
    finally:
        fixture.sim("DELETE", "/_sim/faults")
    assert sent.message.idempotency_key == key
    assert message_stats(fixture, key) == {"requests": 2, "messages": 1}


def test_content_that_is_not_json_is_refused_by_name_and_sends_nothing(client, fixture):
    key = new_idempotency_key()
    with pytest.raises(GatewayError) as raised:
        client.send(CALL_SID, "{not json", idempotency_key=key)
    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["content"]
    assert error.idempotency_key == key and error.message_may_exist is False
    assert message_stats(fixture, key)["requests"] == 0


def test_a_call_that_is_not_active_is_a_failed_precondition(client, fixture):
    inactive = "CA00000000000000000000000000031211"
    fixture.sim("PUT", f"/_sim/calls/{inactive}", {"state": "completed"})
    with pytest.raises(GatewayError) as raised:
        client.send(inactive, "{}")
    error = raised.value
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.twilio_error is not None and error.twilio_error.code == 31211
    assert error.message_may_exist is False
    assert error.attempts == 1
    assert error.next_step == "retrying with it is safe once the cause is fixed"


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "SUBSCRIPTION_CLI_TOKEN"}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_cli_deletes_and_sends(client, fixture):
    sid = client.create(CALL_SID, CALLBACK).subscription.sid
    deleted = run("delete", "--target", fixture.target, "--call-sid", CALL_SID, "--sid", sid)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {}

    sent = run("send", "--target", fixture.target, "--call-sid", CALL_SID, "--content",
               '{"text": "hi"}', "--idempotency-key", "cli-send-key")
    assert sent.returncode == 0, sent.stderr
    message = json.loads(sent.stdout)
    assert message["sid"].startswith("KX") and message["idempotency_key"] == "cli-send-key"


def test_the_cli_says_what_to_do_after_a_failed_delete(fixture):
    done = run("delete", "--target", fixture.target, "--call-sid", CALL_SID, "--sid",
               "ZY" + "0" * 32)
    assert done.returncode == 1
    first, second, report = done.stderr.split("\n", 2)
    assert first.startswith("error: NOT_FOUND: ")
    assert second == "next: there is no such subscription, call or account: do not retry"
    assert "idempotency_key" not in json.loads(report)
