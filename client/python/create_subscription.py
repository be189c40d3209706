#!/usr/bin/python3
# (Debian's python3: python3-grpcio and python3-protobuf are apt packages.)
"""Subscribe a live Voice SDK call to Twilio user-defined messages through the gateway.

Example client for twilio_gateway.v1.SubscriptionService in Python. Generate the stubs first:

    client/python/generate.sh                       # into client/python/gen
    /usr/bin/python3 client/python/create_subscription.py --target localhost:50051 \\
        --call-sid CA0123456789abcdef0123456789abcdef \\
        --callback https://example.com/twilio/messages

TLS: --tls-ca FILE verifies the gateway against that CA bundle; add --tls-cert FILE and
--tls-key FILE for mutual TLS. A bearer token, when the gateway wants one, is read from the
environment variable SUBSCRIPTION_CLI_TOKEN (never a flag: command lines are visible to every
user) and sent as `authorization: Bearer <token>` metadata.

On success prints the subscription as JSON on stdout and exits 0. On failure prints the gRPC
status, the idempotency key with what to do with it next (by the code and the ErrorInfo reason,
as the C++ CLI says it) and the decoded details (google.rpc.BadRequest, ErrorInfo, RetryInfo and
twilio_gateway.v1.TwilioError, carried in the `grpc-status-details-bin` trailer) on stderr,
the details as one JSON object, and exits 1. Usage errors exit 2.
"""

import argparse
import base64
import json
import os
import sys
import uuid

STUBS_ENV = "TWILIO_GATEWAY_PYTHON_STUBS"
DEFAULT_STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")
STATUS_DETAILS_KEY = "grpc-status-details-bin"
TOKEN_ENV = "SUBSCRIPTION_CLI_TOKEN"


def load_stubs(stubs_dir):
    """Imports the generated modules from stubs_dir (see generate.sh)."""
    sys.path.insert(0, stubs_dir)
    try:
        from google.rpc import error_details_pb2, status_pb2
        from twilio_gateway.v1 import subscription_service_pb2, subscription_service_pb2_grpc
    except ImportError as e:
        sys.exit(f"create_subscription: cannot import the generated stubs from {stubs_dir} ({e}); "
                 "run client/python/generate.sh [DIR] and pass --stubs DIR")
    return status_pb2, error_details_pb2, subscription_service_pb2, subscription_service_pb2_grpc


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Create a Twilio UserDefinedMessageSubscription through the gateway.",
        epilog="A bearer token, when the gateway wants one, is read from the environment variable "
               f"{TOKEN_ENV} (never a flag: command lines are visible to every user).")
    p.add_argument("--target", default="localhost:50051", help="gateway address (default %(default)s)")
    p.add_argument("--call-sid", required=True, help="the call: CA followed by 32 hex digits")
    p.add_argument("--callback", required=True, help="where Twilio sends the messages (http/https URL)")
    p.add_argument("--method", type=str.upper, choices=["POST", "GET"],
                   help="how Twilio calls the callback (default: Twilio's, POST)")
    p.add_argument("--idempotency-key",
                   help="reuse a key to retry a create safely; generated here when omitted, so it "
                        "is known even if the call times out")
    p.add_argument("--account-sid", help="a subaccount (AC...); default: the gateway's account")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="deadline in seconds for the whole call, retries included (default %(default)s)")
    p.add_argument("--tls-ca", metavar="FILE",
                   help="connect with TLS, verifying the gateway against this CA bundle")
    p.add_argument("--tls-cert", metavar="FILE", help="client certificate for mutual TLS (with --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="its private key")
    p.add_argument("--stubs", default=os.environ.get(STUBS_ENV, DEFAULT_STUBS),
                   help=f"directory of the generated stubs (default ${STUBS_ENV} or %(default)s)")
    args = p.parse_args(argv)
    if not 0 < args.timeout <= 3600:
        p.error("--timeout must be between 0 and 3600 seconds")
    # The same rules as the C++ CLI (client/cli/main.cc).
    if (args.tls_cert is None) != (args.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if args.tls_cert is not None and args.tls_ca is None:
        p.error("--tls-cert needs --tls-ca")
    # Read now, so a missing file is a usage error rather than a failed handshake later.
    args.pem = {}
    for flag in ("tls_ca", "tls_cert", "tls_key"):
        path = getattr(args, flag)
        if path is not None:
            try:
                with open(path, "rb") as f:
                    args.pem[flag] = f.read()
            except OSError as e:
                p.error(f"--{flag.replace('_', '-')}: cannot read {path}: {e.strerror}")
    return args


def channel_credentials(grpc, pem):
    """None for plaintext; else TLS verified against the CA, with a client certificate if given."""
    if "tls_ca" not in pem:
        return None
    return grpc.ssl_channel_credentials(root_certificates=pem["tls_ca"],
                                        private_key=pem.get("tls_key"),
                                        certificate_chain=pem.get("tls_cert"))


def decode_status_details(rpc_error, status_pb2, error_details_pb2, service_pb2):
    """Returns (google.rpc.Status or None, [decoded detail messages]) from an RpcError.

    The gateway puts a serialized google.rpc.Status in the `grpc-status-details-bin` trailing
    metadata; each of its details is a google.protobuf.Any. Known types are unpacked into their
    message classes; unknown ones are returned as the Any itself.
    """
    raw = None
    for key, value in rpc_error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            raw = value
    if raw is None:
        return None, []
    status = status_pb2.Status.FromString(raw)
    known = [error_details_pb2.BadRequest, error_details_pb2.ErrorInfo,
             error_details_pb2.RetryInfo, service_pb2.TwilioError]
    details = []
    for any_detail in status.details:
        for cls in known:
            if any_detail.Is(cls.DESCRIPTOR):
                message = cls()
                any_detail.Unpack(message)
                details.append(message)
                break
        else:
            details.append(any_detail)
    return status, details


def next_step(code_name, reason):
    """What to do with the idempotency key after an error, by the gRPC code and the ErrorInfo
    reason: the same advice as the C++ CLI's NextStep (client/cli/main.cc; README, "Exactly
    once: the contract")."""
    if code_name == "INVALID_ARGUMENT":
        return "fix the request and use a new key: retrying this one cannot succeed"
    if code_name == "UNKNOWN" and reason == "OUTCOME_UNKNOWN":
        return ("the subscription may or may not exist and the gateway will not send this key "
                "again; a new key may create a second one")
    if code_name == "FAILED_PRECONDITION":
        if reason == "IDEMPOTENCY_KEY_REUSED":
            return "this key belongs to another request: use a new key"
        return "retrying with it is safe once the cause is fixed"
    if code_name in ("NOT_FOUND", "PERMISSION_DENIED", "UNAUTHENTICATED"):
        return "retrying with it changes nothing until the cause is fixed"
    return "retry with it to repeat this create safely"


def detail_to_dict(message):
    from google.protobuf import any_pb2, json_format

    if isinstance(message, any_pb2.Any):
        return {"@type": message.type_url, "value_base64": base64.b64encode(message.value).decode()}
    out = {"@type": "type.googleapis.com/" + message.DESCRIPTOR.full_name}
    out.update(json_format.MessageToDict(message, preserving_proto_field_name=True))
    return out


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    status_pb2, error_details_pb2, pb, pb_grpc = load_stubs(args.stubs)
    import grpc
    from google.protobuf import json_format

    request = pb.CreateSubscriptionRequest(
        call_sid=args.call_sid,
        callback=args.callback,
        idempotency_key=args.idempotency_key or str(uuid.uuid4()),
    )
    if args.method:
        request.method = pb.CALLBACK_METHOD_GET if args.method == "GET" else pb.CALLBACK_METHOD_POST
    if args.account_sid:
        request.account_sid = args.account_sid

    # Empty counts as unset, as in the C++ CLI. The token is never printed.
    token = os.environ.get(TOKEN_ENV)
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    credentials = channel_credentials(grpc, args.pem)
    channel = (grpc.secure_channel(args.target, credentials) if credentials
               else grpc.insecure_channel(args.target))
    with channel:
        stub = pb_grpc.SubscriptionServiceStub(channel)
        try:
            subscription = stub.Create(request, timeout=args.timeout, metadata=metadata)
        except grpc.RpcError as e:
            status, details = decode_status_details(e, status_pb2, error_details_pb2, pb)
            code = e.code()
            report = {
                "code": code.name,
                "code_number": code.value[0],
                "message": e.details(),
                "idempotency_key": request.idempotency_key,
                "details": [detail_to_dict(d) for d in details],
            }
            if status is not None and status.code != code.value[0]:
                report["status_code_mismatch"] = status.code
            reason = next((d.reason for d in details
                           if isinstance(d, error_details_pb2.ErrorInfo)), "")
            print(f"error: {code.name}: {e.details()}\n"
                  f"idempotency_key: {request.idempotency_key} ({next_step(code.name, reason)})",
                  file=sys.stderr)
            print(json.dumps(report, indent=1), file=sys.stderr)
            return 1

    print(json_format.MessageToJson(subscription, preserving_proto_field_name=True, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
