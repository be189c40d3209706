"""subscription-cli: the C++ CLI (client/cli/main.cc) for Python installs.

    subscription-cli create --call-sid CA... --callback https://example.com/messages [options]
    subscription-cli delete --call-sid CA... --sid ZY... [options]
    subscription-cli send --call-sid CA... --content '{"text": "hi"}' [options]
    subscription-cli watch [--call-sid CA...] [--cursor C | --from-oldest] [options]

Each command takes the C++ CLI's flags; `subscription-cli COMMAND --help` lists them. (The C++
CLI also takes create's flags without the word `create`; this one always wants the command.) It
prints the result as JSON on stdout (a delete: `{}`) and exits 0; or prints the error on stderr
and exits 1: the gRPC status, what to do next (for create and send: with the idempotency key),
and the details as one JSON object. `watch` prints one JSON line per message until interrupted
(SIGINT or SIGTERM: exit 0) or until the stream ends: then the error, what to do next and
`resume_cursor: CURSOR` (pass it as --cursor) on stderr, exit 1.
Usage errors exit 2. The bearer token comes from the environment, never a flag: a command line
is visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
from typing import Any, Dict, List, Optional, Tuple

from google.protobuf import json_format

from .channel import Tls, open_channel
from .client import CallMessage, SubscriptionClient
from .errors import GatewayError, unpack_detail

TOKEN_ENV = "SUBSCRIPTION_CLI_TOKEN"


def _parsers() -> Tuple[argparse.ArgumentParser, Dict[str, argparse.ArgumentParser]]:
    """The command's parser and each subcommand's, which reports that command's usage errors."""
    parser = argparse.ArgumentParser(
        prog="subscription-cli",
        description="Call the Twilio subscription gateway, which holds the Twilio credentials.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    epilog = ("A bearer token, when the gateway wants one, is read from the environment variable "
              f"{TOKEN_ENV} (never a flag: command lines are visible to every user).")
    create = commands.add_parser(
        "create", help="subscribe a live Voice SDK call to Twilio user-defined messages",
        description="Create a Twilio UserDefinedMessageSubscription through the gateway; prints "
                    "the subscription (its sid is what delete takes).", epilog=epilog)
    delete = commands.add_parser(
        "delete", help="delete a user-defined message subscription",
        description="Delete a Twilio UserDefinedMessageSubscription through the gateway; prints "
                    "{} once it is gone. No idempotency key: retrying a delete is always safe.",
        epilog=epilog)
    send = commands.add_parser(
        "send", help="send a user-defined message to the Voice SDK on a live call",
        description="Send a Twilio UserDefinedMessage through the gateway; prints the message.",
        epilog=epilog)
    create.add_argument("--call-sid", required=True,
                        help="the call: CA followed by 32 hex digits")
    create.add_argument("--callback",
                        help="where Twilio sends the messages (http/https URL); without it the "
                             "gateway decides: with its webhook receiver, its own public URL "
                             "(then use watch)")
    create.add_argument("--method", type=str.upper, choices=["POST", "GET"],
                        help="how Twilio calls the callback (default: Twilio's, POST)")
    create.add_argument("--idempotency-key",
                        help="reuse a key to retry a create safely; generated here when omitted, "
                             "so it is known even if the call times out")
    delete.add_argument("--call-sid", required=True,
                        help="the call the subscription belongs to: CA followed by 32 hex digits")
    delete.add_argument("--sid", required=True,
                        help="the subscription, as create printed it: ZY followed by 32 hex digits")
    send.add_argument("--call-sid", required=True,
                      help="the call whose SDK receives the message: CA followed by 32 hex digits")
    send.add_argument("--content", required=True,
                      help="the message: one JSON document, at most 4096 bytes")
    send.add_argument("--idempotency-key",
                      help="reuse a key to retry a send safely (it is sent at most once); "
                           "generated here when omitted, so it is known even if the call times out")
    watch = commands.add_parser(
        "watch", help="print the messages the Voice SDKs send, one JSON line each",
        description="Stream the messages Voice SDK clients send on calls, as Twilio delivers "
                    "them to the gateway's webhook (subscribe with create, without --callback): "
                    "one JSON object per line (sid, account_sid, call_sid, sequence_number, "
                    "content, content_type, timestamp, cursor) until interrupted.",
        epilog=epilog)
    watch.add_argument("--call-sid", help="only this call's messages (default: every call)")
    start = watch.add_mutually_exclusive_group()
    start.add_argument("--cursor", help="resume after this message (a cursor printed earlier)")
    start.add_argument("--from-oldest", action="store_true",
                       help="start with the oldest message the gateway keeps (default: the next "
                            "one it receives)")
    for command in (create, delete, send, watch):
        command.add_argument("--target", default="localhost:50051",
                             help="gateway address (default %(default)s)")
        command.add_argument("--account-sid",
                             help="a subaccount (AC...); default: the gateway's account")
        command.add_argument("--timeout", type=float, default=None if command is watch else 10.0,
                             help="deadline in seconds for the whole call, retries included "
                                  "(default %(default)s)")
        command.add_argument("--tls-ca", metavar="FILE",
                             help="connect with TLS, verifying the gateway against this CA bundle")
        command.add_argument("--tls-cert", metavar="FILE",
                             help="client certificate for mutual TLS (with --tls-key)")
        command.add_argument("--tls-key", metavar="FILE", help="its private key")
    return parser, {"create": create, "delete": delete, "send": send, "watch": watch}


def _tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Optional[Tls]:
    """The TLS flags, by the C++ CLI's rules; read now, so that a missing file is a usage error
    rather than a failed handshake later."""
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_cert is not None and args.tls_ca is None:
        parser.error("--tls-cert needs --tls-ca")
    if args.tls_ca is None:
        return None
    try:
        return Tls.from_files(args.tls_ca, args.tls_cert, args.tls_key)
    except OSError as e:
        parser.error(f"cannot read {e.filename}: {e.strerror}")
    except ValueError as e:
        parser.error(str(e))


def error_report(error: GatewayError) -> Dict[str, Any]:
    """The error as the CLI prints it in JSON: code, message, key, and each detail of the
    google.rpc.Status with its type URL (a type this client does not know, in base64)."""
    details: List[Dict[str, Any]] = []
    for detail in error.status.details if error.status is not None else ():
        decoded = unpack_detail(detail)
        out: Dict[str, Any] = {"@type": detail.type_url}
        if decoded is None:
            out["value_base64"] = base64.b64encode(detail.value).decode()
        else:
            out.update(json_format.MessageToDict(decoded, preserving_proto_field_name=True))
        details.append(out)
    report: Dict[str, Any] = {
        "code": error.code.name,
        "code_number": error.code.value[0],
        "message": error.message,
        "idempotency_key": error.idempotency_key,
        "details": details,
    }
    if error.operation in ("delete", "watch"):
        del report["idempotency_key"]  # they have none
    if error.resume_cursor:
        report["resume_cursor"] = error.resume_cursor
    if error.status is not None and error.status.code != error.code.value[0]:
        report["status_code_mismatch"] = error.status.code
    return report


def message_line(message: CallMessage) -> str:
    """One watched message as the C++ CLI prints it: one line of JSON."""
    line: Dict[str, Any] = {
        "sid": message.sid, "account_sid": message.account_sid, "call_sid": message.call_sid,
        "sequence_number": message.sequence_number, "content": message.content,
        "content_type": message.content_type,
    }
    if message.timestamp is not None:
        line["timestamp"] = message.timestamp.isoformat().replace("+00:00", "Z")
    line["cursor"] = message.cursor
    return json.dumps(line, ensure_ascii=False)


def _watch(client: SubscriptionClient, args: argparse.Namespace) -> None:
    """Prints the stream's messages until SIGINT or SIGTERM (which end it without an error)."""
    stream = client.watch(call_sid=args.call_sid, account_sid=args.account_sid,
                          cursor=args.cursor, from_oldest=args.from_oldest, timeout=args.timeout)
    for name in (signal.SIGINT, signal.SIGTERM):
        signal.signal(name, lambda *_: stream.cancel())
    for message in stream:
        print(message_line(message), flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser, commands = _parsers()
    args = parser.parse_args(argv)
    command = commands[args.command]
    if args.timeout is not None and not 0 < args.timeout <= 3600:
        command.error("--timeout must be between 0 and 3600 seconds")
    tls = _tls(command, args)
    with open_channel(args.target, tls) as channel:
        # Empty counts as unset, as in the C++ CLI. The token is never printed.
        client = SubscriptionClient(channel, token=os.environ.get(TOKEN_ENV))
        try:
            if args.command == "watch":
                _watch(client, args)
                return 0
            if args.command == "create":
                created = client.create(args.call_sid, args.callback, method=args.method,
                                        idempotency_key=args.idempotency_key,
                                        account_sid=args.account_sid, timeout=args.timeout)
                result: Any = created.subscription
            elif args.command == "send":
                result = client.send(args.call_sid, args.content,
                                     idempotency_key=args.idempotency_key,
                                     account_sid=args.account_sid, timeout=args.timeout).message
            else:
                client.delete(args.call_sid, args.sid, account_sid=args.account_sid,
                              timeout=args.timeout)
                result = None
        except GatewayError as e:
            print(f"error: {e.code.name}: {e.message}", file=sys.stderr)
            if e.operation in ("delete", "watch"):
                print(f"next: {e.next_step}", file=sys.stderr)
                if e.resume_cursor:
                    print(f"resume_cursor: {e.resume_cursor}", file=sys.stderr)
            else:
                print(f"idempotency_key: {e.idempotency_key} ({e.next_step})", file=sys.stderr)
            print(json.dumps(error_report(e), indent=1), file=sys.stderr)
            return 1
    # A delete answers nothing but success; {} keeps stdout JSON, as the C++ CLI prints it.
    print("{}" if result is None else
          json_format.MessageToJson(result, preserving_proto_field_name=True, indent=1))
    return 0
