#!/usr/bin/env python3
"""Receives the messages a call's Voice SDK sends, through the gateway: subscribes the call
without a callback (the gateway's own webhook receives them), then watches, printing each
message's sequence number and content, until the stream ends; then says what to do next and
where to resume.

    python receive_messages.py [TARGET [CALL_SID [CURSOR]]]
        default localhost:50051 and a sample call; with a CURSOR (printed after an error) it
        resumes after that message and does not subscribe again

README.md ("Receiving messages") shows its last ten lines; tests/test_examples.py runs it.
"""

import json
import sys

from twilio_gateway_client import GatewayError, SubscriptionClient, open_channel

target = sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"
call_sid = sys.argv[2] if len(sys.argv) > 2 else "CA0123456789abcdef0123456789abcdef"
cursor = sys.argv[3] if len(sys.argv) > 3 else None


def handle(sequence_number, content):
    print(sequence_number, json.dumps(content), flush=True)


with open_channel(target) as channel:
    gateway = SubscriptionClient(channel)
    try:
        if cursor is None:  # the first run subscribes; from_oldest takes what came meanwhile
            gateway.create(call_sid, "")  # no callback: Twilio calls the gateway's public URL
        for message in gateway.watch(call_sid=call_sid, cursor=cursor, from_oldest=cursor is None):
            handle(message.sequence_number, json.loads(message.content))
            cursor = message.cursor  # store it: the next watch() resumes after this message
    except GatewayError as error:
        sys.exit(f"{error.code.name} {error.reason}: {error.next_step} (cursor {error.resume_cursor})")
