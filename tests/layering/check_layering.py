#!/usr/bin/env python3
"""Proves the build enforces the floors of service/CMakeLists.txt: compiled with the include
paths its own library gets (read from compile_commands.json), a file of a lower floor cannot
include a header of a floor above it, and can include one it links. The generated protos are
such a header for every floor below api/. gRPC's and protobuf's own headers sit in /usr/include,
which no include path can hide, so the sources are also scanned: below api/ only
common/error_details.cc (which encodes error details) includes protobuf, and nothing gRPC.

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
    ("auth", "operations/operations.h", "model/sid.h"),
    ("reload", "credentials/credential_loader.h", "common/file.h"),
    ("credentials", "config/config.h", "reload/reloader.h"),
    ("config", "upstream/upstream_engine.h", "credentials/credential_loader.h"),
    ("limits", "upstream/upstream_engine.h", "redis/redis_client.h"),
    # Generated code (the public contract and google.rpc) is for api/ alone.
    ("twilio", "twilio_gateway/v1/subscription_service.grpc.pb.h", "http/http_transport.h"),
    ("upstream", "google/rpc/error_details.pb.h", "twilio/attempt.h"),
    ("operations", "twilio_gateway/v1/message_service.pb.h", "upstream/upstream_engine.h"),
    ("idempotency", "google/rpc/status.pb.h", "common/error_details.h"),
    ("webhook", "twilio_gateway/v1/message_service.pb.h", "messages/message_log.h"),
]

# Folders of service/ that may include gRPC or protobuf headers, and the one file below them
# that may include protobuf's.
RPC_FOLDERS = ("api", "gateway")
PROTOBUF_FILES = ("common/error_details.cc",)


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


def rpc_includes(source_dir):
    """Lines below api/ that include gRPC or protobuf headers, which include paths cannot hide."""
    found = []
    service = os.path.join(source_dir, "service")
    for root, _, files in os.walk(service):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, service)
            if rel.split(os.sep)[0] in RPC_FOLDERS or rel == "main.cc" or rel == "CMakeLists.txt":
                continue
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if not line.startswith("#include"):
                        continue
                    rpc = "grpc" in line or ".grpc.pb.h" in line
                    protobuf = "google/protobuf" in line or ".pb.h" in line
                    if rpc or (protobuf and rel not in PROTOBUF_FILES):
                        found.append(f"service/{rel}:{number}: {line.strip()}")
    return found


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
    for line in rpc_includes(source_dir):
        print(f"FAIL below api/, a gRPC or protobuf include: {line}")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
