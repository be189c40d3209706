#!/usr/bin/env python3
"""Subscribes a call, sends its SDK a message and deletes the subscription through the gateway,
printing the subscription's and the message's SIDs, or what to do next.

    python quickstart.py [TARGET [CALL_SID]]      default localhost:50051 and a sample call

README.md shows its last nine lines; tests/test_examples.py runs it.
"""

import sys

from twilio_gateway_client import GatewayError, SubscriptionClient, open_channel

target = sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"
call_sid = sys.argv[2] if len(sys.argv) > 2 else "CA0123456789abcdef0123456789abcdef"
callback = "https://example.com/twilio/messages"

with open_channel(target) as channel:
    gateway = SubscriptionClient(channel)
    try:
        subscription = gateway.create(call_sid, callback).subscription
        print(subscription.sid)
        print(gateway.send(call_sid, '{"text": "hello"}').message.sid)
        gateway.delete(call_sid, subscription.sid)
    except GatewayError as error:
        sys.exit(f"{error.code.name} {error.reason}: {error.next_step} (key {error.idempotency_key})")
