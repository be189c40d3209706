"""SubscriptionClient: SubscriptionService.Create and Delete and MessageService.Send, each with a
deadline, a known idempotency key (Create and Send), and errors raised as GatewayError with their
details decoded.

The key is chosen here, before sending, when the caller gives none: a call whose deadline passes
still tells the caller which key to retry with, and a retry with it never creates a second
subscription nor sends a message twice (README, "Exactly once: the contract"). Delete needs no
key: deleting again is always safe.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Optional, Tuple

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

    def create(self, call_sid: str, callback: str, *, method: Optional[str] = None,
               idempotency_key: Optional[str] = None, account_sid: Optional[str] = None,
               timeout: Optional[float] = None) -> Created:
        """Subscribes the call `call_sid` (CA + 32 hex digits) to Twilio user-defined messages,
        delivered to `callback` (an http or https URL) with `method` "POST" (Twilio's default) or
        "GET". `account_sid`: a subaccount (AC...); none means the gateway's own account.

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
