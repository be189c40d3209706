"""The package as installed: from the venv rather than the source tree, typed, and importable
next to googleapis-common-protos."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.internal import api_implementation

import twilio_gateway_client

SOURCE = Path(__file__).resolve().parent.parent / "src"


def test_the_installed_package_is_under_test_with_its_type_information():
    installed = Path(twilio_gateway_client.__file__).resolve().parent
    assert SOURCE not in installed.parents, f"imported from the source tree: {installed}"
    assert (installed / "py.typed").is_file()
    assert sorted(p.name for p in installed.glob("_proto/**/*.pyi")) == [
        "error_details_pb2.pyi", "message_service_pb2.pyi", "status_pb2.pyi",
        "subscription_service_pb2.pyi"]


# Registers google/rpc/status.proto as googleapis-common-protos does (grpcio-status and Google's
# libraries import it): its options differ from our copy's, so protobuf's default pool refuses a
# second, different definition of the file or of google.rpc.Status, whichever came first.
GOOGLEAPIS_STATUS = """
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool
f = descriptor_pb2.FileDescriptorProto(name="google/rpc/status.proto", package="google.rpc",
                                       syntax="proto3", dependency=["google/protobuf/any.proto"])
f.options.cc_enable_arenas = True
f.options.objc_class_prefix = "RPC"
m = f.message_type.add(name="Status")
m.field.add(name="code", number=1, type=5, label=1)
m.field.add(name="message", number=2, type=9, label=1)
m.field.add(name="details", number=3, type=11, label=3, type_name=".google.protobuf.Any")
descriptor_pool.Default().AddSerializedFile(f.SerializeToString())
"""

# Decodes an error with the package, as if from the gateway's trailers.
DECODE = """
import grpc
from twilio_gateway_client import GatewayError
from twilio_gateway_client._proto.google.rpc import error_details_pb2, status_pb2
status = status_pb2.Status(code=3)
status.details.add(type_url="type.googleapis.com/google.rpc.ErrorInfo",
                   value=error_details_pb2.ErrorInfo(reason="INVALID_REQUEST").SerializeToString())
error = GatewayError(code=grpc.StatusCode.INVALID_ARGUMENT, message="", idempotency_key="k",
                     status=status_pb2.Status.FromString(status.SerializeToString()))
assert error.reason == "INVALID_REQUEST", error.reason
"""


@pytest.mark.parametrize("implementation", sorted({api_implementation.Type(), "python"}))
@pytest.mark.parametrize("first", ["googleapis", "package"])
def test_it_imports_next_to_googleapis_google_rpc(implementation, first):
    script = GOOGLEAPIS_STATUS + DECODE if first == "googleapis" else DECODE + GOOGLEAPIS_STATUS
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": implementation},
                          timeout=60)
    assert done.returncode == 0, done.stderr
