"""SubscriptionClient: SubscriptionService.Create and Delete and MessageService.Send, each with a
deadline, a known idempotency key (Create and Send), and errors raised as GatewayError with their
details decoded; MessageService.Watch as an iterator of CallMessage.

The key is chosen here, before sending, when the caller gives none: a call whose deadline passes
still tells the caller which key to retry with, and a retry with it never creates a second
subscription nor sends a message twice (README, "Exactly once: the contract"). Delete needs no
key: deleting again is always safe.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import uuid
from typing import Iterator, Optional, Tuple

import grpc

from ._proto.twilio_gateway.v1 import (
    message_service_pb2,
    message_service_pb2_grpc,
    subscription_service_pb2,
    subscription_service_pb2_grpc,
)
from .errors import GatewayError, Metadata, from_rpc_error

Subscription = subscription_service_pb2.Subscription
Message = message_service_pb2.Message

_METHODS = {
    "POST": subscription_service_pb2.CALLBACK_METHOD_POST,
    "GET": subscription_service_pb2.CALLBACK_METHOD_GET,
}


def new_idempotency_key() -> str:
    """A random UUID v4, as the gateway would generate. Make one yourself and store it before
    calling when your own process must be able to retry after a crash."""
    return str(uuid.uuid4())


@dataclasses.dataclass(frozen=True)
class CallMessage:
    """A message a Voice SDK client sent on a call, as Twilio delivered it to the gateway
    (twilio_gateway.v1.CallMessage)."""

    sid: str  # KX + 32 hex digits; a redelivery by Twilio is not streamed again
    account_sid: str
    call_sid: str
    sequence_number: int  # Twilio's per call, from 0; a gap is a message Twilio did not deliver
    content: str  # the SDK's JSON, as text: json.loads() it
    content_type: str  # e.g. "application/json"
    timestamp: Optional[datetime.datetime]  # when Twilio says it was sent (UTC); None if unknown
    cursor: str  # pass to watch(cursor=...) to resume after this message


@dataclasses.dataclass(frozen=True)
class Created:
    """The gateway's answer to a successful Create."""

    subscription: Subscription  # as Twilio returned it; .idempotency_key is the key used
    replayed: bool  # the stored answer to an earlier call with this key: nothing new was created
    request_id: str  # the gateway's id for the call (x-request-id), as in its audit log


@dataclasses.dataclass(frozen=True)
class Deleted:
    """The gateway's answer to a successful Delete: the subscription is gone."""

    request_id: str  # the gateway's id for the call (x-request-id), as in its audit log


@dataclasses.dataclass(frozen=True)
class Sent:
    """The gateway's answer to a successful Send."""

    message: Message  # as Twilio returned it; .idempotency_key is the key used
    replayed: bool  # the stored answer to an earlier call with this key: nothing new was sent
    request_id: str


class SubscriptionClient:
    """Calls the gateway (SubscriptionService and MessageService) over a channel from
    open_channel() (or any grpc.Channel).

    Safe to use from several threads at once: it holds only the stubs and its settings.
    """

    def __init__(self, channel: grpc.Channel, *, token: Optional[str] = None,
                 default_timeout: float = 10.0) -> None:
        """`token`: a bearer token, sent as `authorization: Bearer <token>` on every call, for a
        gateway that names its callers by token; none (or empty) for mutual TLS or a loopback
        gateway without a caller policy. `default_timeout`: the deadline in seconds of a call that
        gives none; it bounds the whole call, the gateway's retries included."""
        if not default_timeout > 0:
            raise ValueError("default_timeout must be positive")
        self._stub = subscription_service_pb2_grpc.SubscriptionServiceStub(channel)
        self._messages = message_service_pb2_grpc.MessageServiceStub(channel)
        self._metadata: Metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._default_timeout = default_timeout

    def create(self, call_sid: str, callback: Optional[str] = None, *,
               method: Optional[str] = None, idempotency_key: Optional[str] = None,
               account_sid: Optional[str] = None, timeout: Optional[float] = None) -> Created:
        """Subscribes the call `call_sid` (CA + 32 hex digits) to Twilio user-defined messages,
        delivered to `callback` (an http or https URL) with `method` "POST" (Twilio's default) or
        "GET". Without a callback (None or "") the gateway decides: with its webhook receiver
        configured it subscribes its own public URL, and watch() streams the messages; without
        one it answers INVALID_ARGUMENT naming `callback`. `account_sid`: a subaccount (AC...);
        none means the gateway's own account.

        `idempotency_key`: the same key as an earlier call retries that create safely; none (or
        empty) means a new key, generated here. Raises GatewayError, which carries the key.
        """
        if method is not None and method not in _METHODS:
            raise ValueError(f"method must be POST or GET, not {method!r}")
        _check_timeout(timeout)
        request = subscription_service_pb2.CreateSubscriptionRequest(
            call_sid=call_sid,
            callback=callback,
            method=_METHODS[method] if method is not None else None,
            idempotency_key=idempotency_key or new_idempotency_key(),
            account_sid=account_sid,
        )
        try:
            subscription, call = self._stub.Create.with_call(
                request, timeout=timeout or self._default_timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, request.idempotency_key, "create") from e
        replayed, request_id = _call_facts(call)
        return Created(subscription=subscription, replayed=replayed, request_id=request_id)

    def delete(self, call_sid: str, sid: str, *, account_sid: Optional[str] = None,
               timeout: Optional[float] = None) -> Deleted:
        """Deletes the subscription `sid` (ZY + 32 hex digits, as create() returned it) of the
        call `call_sid`. Returns once it is gone, also when an earlier attempt of this call
        deleted it and its answer was lost. Raises GatewayError (NOT_FOUND: no such subscription,
        call or account); retrying a delete is always safe, so it has no idempotency key."""
        _check_timeout(timeout)
        request = subscription_service_pb2.DeleteSubscriptionRequest(
            call_sid=call_sid, sid=sid, account_sid=account_sid)
        try:
            _, call = self._stub.Delete.with_call(
                request, timeout=timeout or self._default_timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, "", "delete") from e
        return Deleted(request_id=_call_facts(call)[1])

    def send(self, call_sid: str, content: str, *, idempotency_key: Optional[str] = None,
             account_sid: Optional[str] = None, timeout: Optional[float] = None) -> Sent:
        """Sends `content`, one JSON document as text (at most 4096 bytes; the gateway checks
        it), to the Voice SDK on the call `call_sid`. Use json.dumps() for a Python value.

        `idempotency_key`: the same key as an earlier call retries that send safely (the message
        goes at most once); none (or empty) means a new key, generated here. Raises GatewayError,
        which carries the key and `message_may_exist`.
        """
        if not isinstance(content, str):
            raise TypeError(f"content must be JSON text (a str), not {type(content).__name__}: "
                            "use json.dumps()")
        _check_timeout(timeout)
        request = message_service_pb2.SendMessageRequest(
            call_sid=call_sid, content=content,
            idempotency_key=idempotency_key or new_idempotency_key(), account_sid=account_sid)
        try:
            message, call = self._messages.Send.with_call(
                request, timeout=timeout or self._default_timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, request.idempotency_key, "send") from e
        replayed, request_id = _call_facts(call)
        return Sent(message=message, replayed=replayed, request_id=request_id)

    def watch(self, call_sid: Optional[str] = None, account_sid: Optional[str] = None,
              cursor: Optional[str] = None, from_oldest: bool = False,
              timeout: Optional[float] = None) -> "MessageStream":
        """Streams the messages Voice SDK clients send on calls, as Twilio delivers them to the
        gateway's webhook (README, "Receiving messages"): an iterator of CallMessage that does not
        end by itself. `call_sid`, `account_sid`: only that call's (or account's; none: the
        gateway's own account). `cursor`: resume after that message (a CallMessage.cursor
        received earlier, on any replica); none: the next message stored, or with `from_oldest`
        the oldest still kept. `timeout`: a deadline for the whole stream in seconds; none: no
        deadline (not the client's default_timeout, which bounds single calls).

        Iterating raises GatewayError when the stream ends: its `resume_cursor` is where to
        resume (OUT_OF_RANGE: the cursor left the retention, so start again without it).
        MessageStream.cancel() (from any thread) or leaving a `with` block ends it without error.
        """
        _check_timeout(timeout)
        if from_oldest not in (True, False):
            raise TypeError("from_oldest must be a bool")
        request = message_service_pb2.WatchMessagesRequest(
            call_sid=call_sid, account_sid=account_sid, cursor=cursor, from_oldest=from_oldest)
        call = self._messages.Watch(request, timeout=timeout, metadata=self._metadata)
        return MessageStream(call, cursor or None)


class MessageStream:
    """A Watch in progress: iterate it for CallMessage. Knows the cursor of the last message it
    gave out, which is where a new watch() resumes (`cursor`, also on the GatewayError that ends
    it as `resume_cursor`). Iterate from one thread; cancel() may come from any.
    """

    def __init__(self, call: grpc.Call, cursor: Optional[str]) -> None:
        self._call = call
        self._lock = threading.Lock()
        self._cancelled = False
        # The last message handed out, else the cursor the stream started after.
        self.cursor: Optional[str] = cursor

    def __iter__(self) -> Iterator[CallMessage]:
        return self

    def __next__(self) -> CallMessage:
        try:
            received = next(self._call)  # type: ignore[call-overload]
        except grpc.RpcError as e:
            with self._lock:
                if self._cancelled:
                    raise StopIteration from None
            error = from_rpc_error(e, "", "watch")
            # This stream's own word first: the gateway's `cursor` is the last message it wrote,
            # which a broken connection may have lost on the way. Without one (no message yet,
            # a watch of new ones) the gateway's says where the stream started.
            error.resume_cursor = self.cursor or error.metadata.get("cursor") or None
            raise error from e
        message = _call_message(received)
        self.cursor = message.cursor
        return message

    def cancel(self) -> None:
        """Ends the stream: iterating stops (StopIteration), no error."""
        with self._lock:
            self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> "MessageStream":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()


def _call_message(m: message_service_pb2.CallMessage) -> CallMessage:
    return CallMessage(
        sid=m.sid, account_sid=m.account_sid, call_sid=m.call_sid,
        sequence_number=m.sequence_number, content=m.content, content_type=m.content_type,
        timestamp=(m.timestamp.ToDatetime(tzinfo=datetime.timezone.utc)
                   if m.HasField("timestamp") else None),
        cursor=m.cursor)


def _check_timeout(timeout: Optional[float]) -> None:
    if timeout is not None and not timeout > 0:
        raise ValueError("timeout must be positive")


def _call_facts(call: grpc.Call) -> Tuple[bool, str]:
    """Whether the gateway replayed a stored answer (trailer idempotent-replay), and its
    x-request-id."""
    initial = dict(call.initial_metadata() or ())
    trailing = dict(call.trailing_metadata() or ())
    return (trailing.get("idempotent-replay") == "true",
            str(initial.get("x-request-id", "")))
