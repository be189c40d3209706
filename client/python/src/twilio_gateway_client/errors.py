"""GatewayError: a failed call, with what the gateway said about it, decoded.

The gateway explains every error in a google.rpc.Status carried in the `grpc-status-details-bin`
trailer (README, "Errors"): ErrorInfo (a stable reason; metadata with the idempotency key,
`attempts`, `subscription_may_exist` or `message_may_exist`, `replayed`), BadRequest (the invalid fields), RetryInfo
(when to retry) and TwilioError (what Twilio answered). They are decoded here once, into plain
typed attributes, so that callers act on facts rather than parse trailers. `next_step` says what
to do with the idempotency key, in the C++ CLI's words (`NextStep` in client/cli/main.cc).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Dict, Literal, Mapping, Optional, Tuple, Type, Union, cast

import grpc
from google.protobuf import any_pb2, message

from ._proto.google.rpc import error_details_pb2, status_pb2
from ._proto.twilio_gateway.v1 import subscription_service_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"

Metadata = Tuple[Tuple[str, Union[str, bytes]], ...]

# The call an error came from: next_step's advice depends on it.
Operation = Literal["create", "delete", "send", "watch"]

# By the type URL's message name, which is the gateway's (google.rpc.*): the generated classes
# carry another proto package (see generate.sh) and so cannot be matched by their own names.
_DETAIL_TYPES: Dict[str, Type[message.Message]] = {
    "google.rpc.ErrorInfo": error_details_pb2.ErrorInfo,
    "google.rpc.BadRequest": error_details_pb2.BadRequest,
    "google.rpc.RetryInfo": error_details_pb2.RetryInfo,
    "twilio_gateway.v1.TwilioError": subscription_service_pb2.TwilioError,
}


def unpack_detail(detail: any_pb2.Any) -> Optional[message.Message]:
    """The message in one of the Status's details, or None for a type this client does not know."""
    message_class = _DETAIL_TYPES.get(detail.type_url.rpartition("/")[2])
    return None if message_class is None else message_class.FromString(detail.value)


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    """A request field the gateway (or Twilio) found invalid, and why."""

    field: str
    description: str


@dataclasses.dataclass(frozen=True)
class TwilioError:
    """What Twilio answered, when the error came from Twilio."""

    code: int  # Twilio's error code, e.g. 20404; 0 when Twilio sent none
    message: str
    more_info: str  # link to Twilio's documentation of the code
    http_status: int


def next_step(code: grpc.StatusCode, reason: str, operation: Operation = "create") -> str:
    """What to do next after an error of `operation`, by the gRPC code and the ErrorInfo reason
    (README, "Exactly once: the contract"; the C++ CLI's NextStep says the same). For create and
    send it is about the idempotency key; a delete has none and is always safe to repeat; a watch
    resumes with its cursor (README, "Receiving messages")."""
    if operation not in ("create", "delete", "send", "watch"):
        raise ValueError(f"operation must be create, delete, send or watch, not {operation!r}")
    if operation == "watch":
        if code == grpc.StatusCode.OUT_OF_RANGE:
            return ("messages after the cursor may be lost: watch again without it (from_oldest "
                    "for what is still kept)")
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return "fix the request: retrying it unchanged cannot succeed"
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            return "retrying changes nothing until the cause is fixed"
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            return "the gateway receives no messages: ask its operator to configure its webhook"
        return "watch again with the resume cursor: nothing it still keeps after it is lost"
    if operation == "delete":
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return "fix the request: retrying it unchanged cannot succeed"
        if code == grpc.StatusCode.NOT_FOUND:
            return "there is no such subscription, call or account: do not retry"
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            return "retrying changes nothing until the cause is fixed"
        return "retry the delete: deleting again is always safe"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return "fix the request and use a new key: retrying this one cannot succeed"
    if code == grpc.StatusCode.UNKNOWN and reason == "OUTCOME_UNKNOWN":
        if operation == "send":
            return ("the message may or may not have been sent and the gateway will not send this "
                    "key again; a new key may send it a second time")
        return ("the subscription may or may not exist and the gateway will not send this key "
                "again; a new key may create a second one")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        if reason == "IDEMPOTENCY_KEY_REUSED":
            return "this key belongs to another request: use a new key"
        return "retrying with it is safe once the cause is fixed"
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNAUTHENTICATED):
        return "retrying with it changes nothing until the cause is fixed"
    return f"retry with it to repeat this {operation} safely"


class GatewayError(Exception):
    """A call that failed, wherever it failed: at the gateway, at Twilio, or on the way (a
    deadline that passed in this process, a connection never made).

    `idempotency_key` is always the key a create or send was sent with, even when no answer came
    back: the client chose it before sending. Retrying with it is what `next_step` is about. A
    delete or a watch has no key ("").

    An error that ends a watch has `resume_cursor`: the cursor of the last message the watch
    gave out (or the one it started after), else the gateway's `metadata["cursor"]` (where the
    stream started, for a watch of new messages that got none), to pass to the next watch(); None
    when there is none. The gateway's own view is in `metadata["cursor"]` (the last message it
    wrote to the stream).
    """

    def __init__(self, *, code: grpc.StatusCode, message: str, idempotency_key: str,
                 status: Optional[status_pb2.Status] = None, request_id: str = "",
                 trailing_metadata: Metadata = (), operation: Operation = "create") -> None:
        super().__init__(f"{code.name}: {message}" +
                         (f" (idempotency_key {idempotency_key})" if idempotency_key else ""))
        self.operation = operation  # "create", "delete", "send" or "watch": the call that failed
        self.code = code
        self.message = message
        self.idempotency_key = idempotency_key
        # The full google.rpc.Status the gateway sent, unknown detail types included (see
        # unpack_detail); None when there was none, as when the deadline passed here first.
        self.status = status
        # The gateway's id for the call (x-request-id), as in its audit log: give it to its
        # operator. Empty when the call never reached the gateway.
        self.request_id = request_id
        self.trailing_metadata = trailing_metadata
        self.resume_cursor: Optional[str] = None  # set by MessageStream for a watch

        self.reason = ""  # ErrorInfo's stable reason, e.g. "INVALID_REQUEST"; "" when none
        self.metadata: Mapping[str, str] = {}  # ErrorInfo's metadata
        self.field_violations: Tuple[FieldViolation, ...] = ()
        self.retry_delay: Optional[datetime.timedelta] = None  # RetryInfo: when to retry
        self.twilio_error: Optional[TwilioError] = None
        for detail in status.details if status is not None else ():
            decoded = unpack_detail(detail)
            if isinstance(decoded, error_details_pb2.ErrorInfo):
                self.reason = decoded.reason
                self.metadata = dict(decoded.metadata)
            elif isinstance(decoded, error_details_pb2.BadRequest):
                self.field_violations = tuple(FieldViolation(v.field, v.description)
                                              for v in decoded.field_violations)
            elif isinstance(decoded, error_details_pb2.RetryInfo):
                self.retry_delay = decoded.retry_delay.ToTimedelta()
            elif isinstance(decoded, subscription_service_pb2.TwilioError):
                self.twilio_error = TwilioError(decoded.code, decoded.message, decoded.more_info,
                                                decoded.http_status)

    @property
    def subscription_may_exist(self) -> bool:
        """False only when the gateway says no attempt can have created the subscription. Without
        its word (a deadline that passed here, a lost connection) the request may have reached
        Twilio, so it may exist."""
        return self.metadata.get("subscription_may_exist") != "false"

    @property
    def message_may_exist(self) -> bool:
        """For a failed send: False only when the gateway says no attempt can have sent the
        message (`message_may_exist`); without its word it may have been sent."""
        return self.metadata.get("message_may_exist") != "false"

    @property
    def attempts(self) -> int:
        """How many times the gateway called Twilio (metadata `attempts`); 0 when not said."""
        value = self.metadata.get("attempts", "")
        return int(value) if value.isdigit() else 0

    @property
    def replayed(self) -> bool:
        """True when this is the stored answer to an earlier call with the same key."""
        return self.metadata.get("replayed") == "true"

    @property
    def next_step(self) -> str:
        return next_step(self.code, self.reason, self.operation)


def from_rpc_error(error: grpc.RpcError, idempotency_key: str,
                   operation: Operation = "create") -> GatewayError:
    """Decodes a failed call (a grpc.RpcError is also its grpc.Call) into a GatewayError."""
    call = cast(grpc.Call, error)
    trailing: Metadata = tuple(call.trailing_metadata() or ())
    initial: Metadata = tuple(call.initial_metadata() or ())
    return GatewayError(
        code=call.code(),
        message=call.details() or "",
        idempotency_key=idempotency_key,
        status=_status_from(trailing),
        request_id=next((str(v) for k, v in initial if k == "x-request-id"), ""),
        trailing_metadata=trailing,
        operation=operation,
    )


def _status_from(trailing: Metadata) -> Optional[status_pb2.Status]:
    raw = next((v for k, v in trailing if k == STATUS_DETAILS_KEY), None)
    if not isinstance(raw, bytes):
        return None
    try:
        return status_pb2.Status.FromString(raw)
    except message.DecodeError:
        # As the C++ client: an unreadable Status leaves the error with its code and message.
        return None
