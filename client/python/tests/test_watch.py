"""SubscriptionClient.watch() and create() without a callback, against the gateway that receives
Twilio's deliveries (tests/clients/fixture.sh: --webhook-listen, --public-webhook-url) and the
simulator playing the Voice SDK (POST /_sim/deliver signs each message as Twilio does)."""

from __future__ import annotations

import datetime
import json
import secrets
import threading
import time
from typing import List

import grpc
import pytest

from twilio_gateway_client import CallMessage, GatewayError, MessageStream, SubscriptionClient

# Every stream has a deadline: a message that never comes fails the test instead of hanging it.
STREAM_TIMEOUT = 30.0


def new_call() -> str:
    """A call no other test has messages on (the simulator treats every call as in progress)."""
    return "CA" + secrets.token_hex(16)


def deliver(fixture, call_sid: str, contents: List[str]) -> None:
    answer = fixture.sim("POST", "/_sim/deliver", {"call_sid": call_sid, "contents": contents})
    assert [d["status"] for d in answer["deliveries"]] == [200] * len(contents), answer


def take(stream: MessageStream, count: int) -> List[CallMessage]:
    return [next(stream) for _ in range(count)]


def test_create_without_a_callback_subscribes_the_gateways_own_url(fixture, receiver):
    call_sid = new_call()
    created = receiver.create(call_sid)
    subscriptions = [s for s in fixture.sim("GET", "/_sim/subscriptions")["subscriptions"]
                     if s["sid"] == created.subscription.sid]
    assert [s["callback"] for s in subscriptions] == [fixture.webhook_url]
    assert receiver.create(new_call(), "").subscription.sid.startswith("ZY")


def test_without_a_receiver_the_gateway_wants_a_callback(client):
    with pytest.raises(GatewayError) as raised:
        client.create(new_call())
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in raised.value.field_violations] == ["callback"]


def test_watch_streams_the_delivered_messages_in_order(fixture, receiver):
    call_sid = new_call()
    receiver.create(call_sid)
    other_call = new_call()
    receiver.create(other_call)
    with receiver.watch(call_sid=call_sid, from_oldest=True, timeout=STREAM_TIMEOUT) as stream:
        deliver(fixture, other_call, ['"not this call"'])
        deliver(fixture, call_sid, ['{"text": "one"}', '{"text": "two"}', "[3]"])
        received = take(stream, 3)
    assert [m.sequence_number for m in received] == [0, 1, 2]
    assert [json.loads(m.content) for m in received] == [{"text": "one"}, {"text": "two"}, [3]]
    for message in received:
        assert message.call_sid == call_sid
        assert message.account_sid == "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        assert message.sid.startswith("KX") and len(message.sid) == 34
        assert message.content_type == "application/json"
        assert isinstance(message.timestamp, datetime.datetime)
        assert message.timestamp.tzinfo is not None
        assert abs(message.timestamp - datetime.datetime.now(datetime.timezone.utc)) < \
            datetime.timedelta(minutes=5)
        assert message.cursor
    assert len({m.cursor for m in received}) == 3
    assert stream.cursor == received[-1].cursor


def test_watch_resumes_after_the_cursor_with_nothing_twice(fixture, receiver):
    call_sid = new_call()
    receiver.create(call_sid)
    with receiver.watch(call_sid=call_sid, from_oldest=True, timeout=STREAM_TIMEOUT) as stream:
        deliver(fixture, call_sid, ['{"n": 0}', '{"n": 1}'])
        first = take(stream, 2)
    # Delivered while nobody watches: the gateway keeps them for the next watch.
    deliver(fixture, call_sid, ['{"n": 2}', '{"n": 3}'])
    with receiver.watch(call_sid=call_sid, cursor=first[-1].cursor,
                        timeout=STREAM_TIMEOUT) as resumed:
        later = take(resumed, 2)
    assert [m.sequence_number for m in later] == [2, 3]
    assert not {m.sid for m in later} & {m.sid for m in first}


def test_a_redelivery_is_not_streamed_twice(fixture, receiver):
    call_sid = new_call()
    receiver.create(call_sid)
    with receiver.watch(call_sid=call_sid, from_oldest=True, timeout=STREAM_TIMEOUT) as stream:
        answer = fixture.sim("POST", "/_sim/deliver",
                             {"call_sid": call_sid, "count": 1, "duplicate": 2})
        assert [d["status"] for d in answer["deliveries"]] == [200, 200, 200]
        deliver(fixture, call_sid, ['"after"'])
        received = take(stream, 2)
    assert [m.sequence_number for m in received] == [0, 1]
    assert received[1].content == '"after"'


def test_cancel_from_another_thread_ends_the_iteration_without_an_error(receiver):
    stream = receiver.watch(call_sid=new_call(), timeout=STREAM_TIMEOUT)
    threading.Timer(0.3, stream.cancel).start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < STREAM_TIMEOUT / 2


def test_an_error_carries_where_to_resume(fixture, receiver):
    call_sid = new_call()
    receiver.create(call_sid)
    stream = receiver.watch(call_sid=call_sid, from_oldest=True, timeout=3)
    deliver(fixture, call_sid, ["{}"])
    (message,) = take(stream, 1)
    with pytest.raises(GatewayError) as raised:
        next(stream)
    error = raised.value
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error.operation == "watch"
    assert error.idempotency_key == ""
    assert error.resume_cursor == message.cursor
    assert error.next_step == ("watch again with the resume cursor: nothing it still keeps after "
                               "it is lost")


def test_a_malformed_cursor_is_invalid_argument_naming_it(receiver):
    with pytest.raises(GatewayError) as raised:
        next(receiver.watch(cursor="not-a-cursor", timeout=STREAM_TIMEOUT))
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in raised.value.field_violations] == ["cursor"]
    assert raised.value.next_step == "fix the request: retrying it unchanged cannot succeed"


def test_a_gateway_without_a_receiver_is_failed_precondition(client):
    with pytest.raises(GatewayError) as raised:
        next(client.watch(timeout=STREAM_TIMEOUT))
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.resume_cursor is None
    assert "operator" in raised.value.next_step


def test_watch_checks_its_arguments_before_calling(receiver):
    with pytest.raises(ValueError):
        receiver.watch(timeout=0)
    with pytest.raises(TypeError):
        receiver.watch(from_oldest="yes")  # type: ignore[arg-type]


class _EndedBeforeAnyMessage(grpc.RpcError, grpc.Call):
    """A Watch call the gateway ended (a drain) before any message, with its ErrorInfo cursor."""

    def __init__(self, gateway_cursor: str) -> None:
        from twilio_gateway_client._proto.google.rpc import error_details_pb2, status_pb2

        info = error_details_pb2.ErrorInfo(domain="twilio-gateway",
                                           metadata={"cursor": gateway_cursor})
        status = status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message="draining")
        # Under google.rpc's name, as the gateway sends it (the package's copy is renamed).
        detail = status.details.add()
        detail.type_url = "type.googleapis.com/google.rpc.ErrorInfo"
        detail.value = info.SerializeToString()
        self._trailing = (("grpc-status-details-bin", status.SerializeToString()),)

    def __iter__(self):
        return self

    def __next__(self):
        raise self

    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "draining"

    def initial_metadata(self):
        return ()

    def trailing_metadata(self):
        return self._trailing

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


def test_a_watch_ended_before_any_message_resumes_where_the_gateway_says_it_started():
    # A watch of new messages has no cursor of its own until a message comes.
    with pytest.raises(GatewayError) as raised:
        next(MessageStream(_EndedBeforeAnyMessage("1700000000000-3"), None))
    assert raised.value.resume_cursor == "1700000000000-3"
    # Its own cursor, when it has one, comes first.
    with pytest.raises(GatewayError) as raised:
        next(MessageStream(_EndedBeforeAnyMessage("1700000000000-3"), "1700000000000-1"))
    assert raised.value.resume_cursor == "1700000000000-1"
