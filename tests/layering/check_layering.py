#!/usr/bin/env python3
"""Proves the build enforces the floors of service/CMakeLists.txt: compiled with the include
paths its own library gets (read from compile_commands.json), a file of a lower floor cannot
include a header of a floor above it, and can include one it links.

Usage: check_layering.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

# (folder, header it must not see, header it must see). The forbidden header is from a floor
# above; the allowed one shows the compile line itself works.
CASES = [
    ("model", "common/log.h", "model/outcome.h"),
    ("common", "twilio/twilio_api.h", "common/log.h"),
    ("http", "metrics/metrics.h", "common/log.h"),
    ("twilio", "upstream/upstream_engine.h", "http/http_transport.h"),
    ("retry", "limits/concurrency_limiter.h", "model/outcome.h"),
    ("webhook", "api/unary_call.h", "common/sha256.h"),
    ("webhook", "twilio/twilio_api.h", "common/sha256.h"),
    ("messages", "webhook/receiver.h", "model/call_message.h"),
    ("metrics", "idempotency/idempotency_guard.h", "http/http_server.h"),
    ("redis", "idempotency/idempotency_store.h", "common/log.h"),
    ("redis", "metrics/metrics.h", "common/log.h"),
    ("idempotency", "upstream/upstream_engine.h", "metrics/gateway_metrics.h"),
    ("validation", "twilio/twilio_api.h", "model/requests.h"),
    ("upstream", "operations/operations.h", "twilio/attempt.h"),
    ("upstream", "idempotency/idempotency_guard.h", "limits/concurrency_limiter.h"),
    ("operations", "api/unary_call.h", "upstream/upstream_engine.h"),
    ("api", "gateway/gateway.h", "operations/operations.h"),
]


def compile_command(commands, source_dir, folder):
    prefix = os.path.join(source_dir, "service", folder) + os.sep
    for entry in commands:
        if entry["file"].startswith(prefix):
            return entry
    raise SystemExit(f"no compile command for service/{folder}/ in compile_commands.json")


def compiles(entry, header):
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    # Keep the compiler and its flags; drop -o/-c/-MF and the like and the source.
    kept, skip = [], False
    for arg in args[1:]:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-c", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if arg in ("-MD", "-MMD") or arg == entry["file"]:
            continue
        kept.append(arg)
    with tempfile.NamedTemporaryFile("w", suffix=".cc", delete=False) as probe:
        probe.write(f'#include "{header}"\n')
    try:
        result = subprocess.run([args[0], *kept, "-fsyntax-only", probe.name],
                                cwd=entry["directory"], capture_output=True, text=True)
    finally:
        os.unlink(probe.name)
    return result.returncode == 0, result.stderr


def main():
    build_dir, source_dir = sys.argv[1], os.path.realpath(sys.argv[2])
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        commands = json.load(f)
    failures = 0
    for folder, forbidden, allowed in CASES:
        entry = compile_command(commands, source_dir, folder)
        ok, err = compiles(entry, allowed)
        if not ok:
            print(f"FAIL {folder}/ cannot include {allowed}, which it links:\n{err}")
            failures += 1
        ok, _ = compiles(entry, forbidden)
        if ok:
            print(f"FAIL {folder}/ can include {forbidden}, a floor above it")
            failures += 1
        else:
            print(f"ok   {folder}/ sees {allowed}, not {forbidden}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
