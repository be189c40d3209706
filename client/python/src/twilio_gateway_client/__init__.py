"""Client of the Twilio subscription gateway (twilio_gateway.v1.SubscriptionService and
MessageService).

    from twilio_gateway_client import GatewayError, SubscriptionClient, Tls, open_channel

    with open_channel("gateway.example.com:443", Tls.from_files("ca.pem")) as channel:
        client = SubscriptionClient(channel, token=token)
        created = client.create("CA...", "https://example.com/twilio/messages", timeout=10)
        client.send("CA...", json.dumps({"text": "hi"}))
        client.delete("CA...", created.subscription.sid)
        for message in client.watch(call_sid="CA...", cursor=cursor):  # messages the SDK sent
            cursor = message.cursor

Errors are raised as GatewayError, decoded: the idempotency key the call was sent with (chosen
before sending, so known even after a timeout), ErrorInfo's reason and metadata, whether the
subscription may exist (or, for send, the message), the invalid fields, RetryInfo's delay, Twilio's error, and `next_step`,
what to do with the key. The `subscription-cli` command is the C++ CLI for Python installs.
"""

from .channel import Tls, open_channel
from .client import (
    CallMessage,
    Created,
    Deleted,
    Message,
    MessageStream,
    Sent,
    Subscription,
    SubscriptionClient,
    new_idempotency_key,
)
from .errors import FieldViolation, GatewayError, TwilioError, next_step

__all__ = [
    "CallMessage",
    "Created",
    "Deleted",
    "FieldViolation",
    "GatewayError",
    "Message",
    "MessageStream",
    "Sent",
    "Subscription",
    "SubscriptionClient",
    "Tls",
    "TwilioError",
    "new_idempotency_key",
    "next_step",
    "open_channel",
]
