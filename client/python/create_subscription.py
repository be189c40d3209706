#!/usr/bin/python3
"""`subscription-cli create` from this source tree, without installing the package.

    /usr/bin/python3 client/python/create_subscription.py --target localhost:50051 \\
        --call-sid CA0123456789abcdef0123456789abcdef \\
        --callback https://example.com/twilio/messages

Kept for the scripts and documents that run the example by path (tests/clients/run_e2e.sh);
installed users run `subscription-cli create` with the same flags. Runs on Debian's
python3-grpcio and python3-protobuf.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))
from twilio_gateway_client.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["create", *sys.argv[1:]]))
