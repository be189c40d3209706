"""SubscriptionClient: SubscriptionService.Create with a deadline, a known idempotency key, and
errors raised as GatewayError with their details decoded.

The key is chosen here, before sending, when the caller gives none: a call whose deadline passes
still tells the caller which key to retry with, and a retry with it never creates a second
subscription (README, "Exactly once: the contract").
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Optional

import grpc

from ._proto.twilio_gateway.v1 import subscription_service_pb2, subscription_service_pb2_grpc
from .errors import GatewayError, Metadata, from_rpc_error

Subscription = subscription_service_pb2.Subscription

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


class SubscriptionClient:
    """Calls the gateway over a channel from open_channel() (or any grpc.Channel).

    Safe to use from several threads at once: it holds only the stub and its settings.
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
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be positive")
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
            raise from_rpc_error(e, request.idempotency_key) from e
        initial = dict(call.initial_metadata() or ())
        trailing = dict(call.trailing_metadata() or ())
        return Created(subscription=subscription,
                       replayed=trailing.get("idempotent-replay") == "true",
                       request_id=str(initial.get("x-request-id", "")))
