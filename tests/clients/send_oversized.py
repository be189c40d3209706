#!/usr/bin/python3
"""Sends the e2e case `oversized` with the Python example client's code and reports the answers.

    check_e2e.py --oversized-spec | send_oversized.py --target HOST:PORT --stubs DIR

Values of up to 1 MiB cannot go through the client's command line (Linux caps one argument at
128 KiB), so this sends them with the client's own pieces: its stubs, a channel made as it makes
one (default options: the limits under test are the defaults) and its decoding of the status
details. Prints a JSON list with one report per request, in the spec's order: the code, the
message, the details as the client prints them, and the length of each trailing metadata value.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "client",
                                "python"))
import create_subscription as client  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--stubs", required=True,
                        help="the generated stubs (client/python/generate.sh)")
    args = parser.parse_args()
    spec = json.load(sys.stdin)
    status_pb2, error_details_pb2, pb, pb_grpc = client.load_stubs(args.stubs)
    import grpc

    reports = []
    with grpc.insecure_channel(args.target) as channel:
        stub = pb_grpc.SubscriptionServiceStub(channel)
        for case in spec["cases"]:
            request = pb.CreateSubscriptionRequest(**spec["base"])
            setattr(request, case["field"], case["fill"] * case["size"])
            report = {"field": case["field"], "size": case["size"], "code": "OK", "code_number": 0,
                      "message": "", "details": [], "trailers": []}
            try:
                stub.Create(request, timeout=5)
            except grpc.RpcError as e:
                status, details = client.decode_status_details(e, status_pb2, error_details_pb2, pb)
                code = e.code()
                report.update(
                    code=code.name, code_number=code.value[0], message=e.details() or "",
                    details=[client.detail_to_dict(d) for d in details],
                    trailers=[[key, len(value if isinstance(value, bytes) else value.encode())]
                              for key, value in e.trailing_metadata() or ()])
                if status is not None and status.code != code.value[0]:
                    report["status_code_mismatch"] = status.code
            reports.append(report)
    json.dump(reports, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
