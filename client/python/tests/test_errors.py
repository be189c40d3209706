"""What needs no gateway: next_step by operation, the may-exist and attempts helpers, the
arguments send() checks itself, and the CLI's usage errors for each command."""

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from conftest import CALL_SID
from twilio_gateway_client import GatewayError, SubscriptionClient, next_step, open_channel
from twilio_gateway_client._proto.google.rpc import error_details_pb2, status_pb2

CLI = str(Path(sys.executable).parent / "subscription-cli")


def error_with_metadata(operation, **metadata):
    info = error_details_pb2.ErrorInfo(reason="TWILIO_UNAVAILABLE", domain="twilio-gateway",
                                       metadata=metadata)
    status = status_pb2.Status(code=14, message="upstream failed")
    detail = status.details.add()
    detail.type_url = "type.googleapis.com/google.rpc.ErrorInfo"
    detail.value = info.SerializeToString()
    return GatewayError(code=grpc.StatusCode.UNAVAILABLE, message="upstream failed",
                        idempotency_key=metadata.get("idempotency_key", ""), status=status,
                        operation=operation)


def test_message_may_exist_reads_the_gateways_word():
    error = error_with_metadata("send", idempotency_key="k", attempts="3",
                                message_may_exist="false")
    assert error.message_may_exist is False
    assert error.attempts == 3
    assert error.next_step == "retry with it to repeat this send safely"
    # Without the gateway's word it may have been sent.
    assert error_with_metadata("send").message_may_exist is True
    assert error_with_metadata("send", attempts="x").attempts == 0


def test_next_step_speaks_of_the_operation():
    assert next_step(grpc.StatusCode.UNAVAILABLE, "") == \
        "retry with it to repeat this create safely"
    assert "the message may or may not have been sent" in \
        next_step(grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN", "send")
    assert next_step(grpc.StatusCode.UNAVAILABLE, "", "delete") == \
        "retry the delete: deleting again is always safe"
    assert next_step(grpc.StatusCode.INVALID_ARGUMENT, "", "delete") == \
        "fix the request: retrying it unchanged cannot succeed"
    with pytest.raises(ValueError):
        next_step(grpc.StatusCode.UNAVAILABLE, "", "fetch")


def test_send_wants_json_text_and_checks_it_before_calling(fixture):
    with open_channel(fixture.target) as channel:
        client = SubscriptionClient(channel)
        with pytest.raises(TypeError, match="json.dumps"):
            client.send(CALL_SID, {"text": "hi"})
        with pytest.raises(ValueError, match="timeout"):
            client.delete(CALL_SID, "ZY" + "0" * 32, timeout=0)


@pytest.mark.parametrize("args, message", [
    (["delete", "--call-sid", CALL_SID], "--sid"),
    (["send", "--call-sid", CALL_SID], "--content"),
    (["send", "--call-sid", CALL_SID, "--content", "{}", "--callback", "https://e.com"],
     "unrecognized arguments: --callback"),
    (["delete", "--call-sid", CALL_SID, "--sid", "ZY1", "--timeout", "0"], "--timeout"),
    (["remove"], "invalid choice"),
])
def test_cli_usage_errors_of_each_command_exit_2(args, message):
    done = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
