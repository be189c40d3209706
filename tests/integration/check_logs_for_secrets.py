#!/usr/bin/python3
"""Runs after every test that starts a gateway (a ctest fixture cleanup) and reads every file
those tests left behind: gateway and simulator logs, client and CLI output. None may hold a
secret that the tests handed to a gateway.

Usage: check_logs_for_secrets.py DIR...   (missing directories are skipped)
"""
import os
import sys

# Every secret the test suite gives a gateway (credentials, rotated credentials, canaries,
# bearer tokens). Keep in sync with tests/integration/*.cc and tests/clients.
SECRETS = [
    "simulator-auth-token",
    "simulator-api-secret",
    "leak-canary-token-5f2c",
    "rotated-api-secret-31c7",
    "billing-token-0f9d2a7e61b4c385",
    "support-token-77ae01c4d93b5f26",
    "clients-e2e-token-4b7d02e9c1a6f835",
    "clients-e2e-wrong-token-8e3f61d0a95c27b4",
    "webhook-watcher-token-6a1e93c0d47b28f5",
    # Redis ACL users' passwords (redis_store_test.cc; the failover chaos test).
    "acl-user-password-3e9b1c",
    "acl-wrong-password-a47d20",
    "acl-admin-password-5c0e8f",
    # The ACL user's password behind stunnel (redis_tls_test.cc).
    "tls-acl-user-password-8d41f7",
]


def main(dirs):
    files = 0
    leaks = []
    for top in dirs:
        if not os.path.isdir(top):
            continue
        for root, _, names in os.walk(top):
            for name in names:
                path = os.path.join(root, name)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                files += 1
                for secret in SECRETS:
                    if secret.encode() in data:
                        leaks.append((path, secret))
    for path, secret in leaks:
        print("LEAK: %s holds %r" % (path, secret))
    print("read %d files under %s" % (files, ", ".join(dirs)))
    if files == 0:
        print("no files to check: did the tests run?")
        return 1
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
