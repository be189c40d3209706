#!/usr/bin/python3
"""Sends the e2e case `oversized` with the Python client package and reports the answers.

    check_e2e.py --oversized-spec | send_oversized.py --target HOST:PORT

Values of up to 1 MiB cannot go through the client's command line (Linux caps one argument at
128 KiB), so this sends them with the package itself (client/python/src, not installed): its
client, on a channel it opens (default options: the limits under test are the defaults), and
its error report. Prints a JSON list with one report per request, in the spec's order: the code,
the message, the details as the client prints them, and the length of each trailing metadata
value.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "client",
                                "python", "src"))
from twilio_gateway_client import GatewayError, SubscriptionClient, open_channel  # noqa: E402
from twilio_gateway_client.cli import error_report  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    args = parser.parse_args()
    spec = json.load(sys.stdin)

    reports = []
    with open_channel(args.target) as channel:
        client = SubscriptionClient(channel)
        for case in spec["cases"]:
            request = dict(spec["base"])
            request[case["field"]] = case["fill"] * case["size"]
            report = {"field": case["field"], "size": case["size"], "code": "OK", "code_number": 0,
                      "message": "", "details": [], "trailers": []}
            try:
                client.create(**request, timeout=5)
            except GatewayError as e:
                report.update(error_report(e))
                report["trailers"] = [[key, len(value if isinstance(value, bytes) else value.encode())]
                                      for key, value in e.trailing_metadata]
            reports.append(report)
    json.dump(reports, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
