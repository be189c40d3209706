package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang/protobuf/ptypes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// Operation names the call an error came from; NextStep's advice depends on it.
type Operation string

// The gateway's operations.
const (
	OperationCreate Operation = "create"
	OperationDelete Operation = "delete"
	OperationSend   Operation = "send"
	OperationWatch  Operation = "watch"
)

// Error is a failed Create, Delete or Send: the gRPC status and the details the gateway attached
// to it (README, "Errors"). Fields whose detail the gateway did not send are zero. It implements GRPCStatus, so
// status.Code(err) and status.FromError(err) work on it too.
type Error struct {
	Code    codes.Code
	Message string
	// IdempotencyKey is the key a Create or Send used, known even when the gateway never answered
	// (the client chose it before sending). NextStep says whether to retry with it. Empty for a
	// Delete, which has none.
	IdempotencyKey string
	// Operation is the call that failed (OperationCreate when decoded by DecodeError).
	Operation Operation
	// ResumeCursor, for an error that ended a Watch, is where to watch again: the cursor of the
	// last message Recv returned, else the one the Watch started after, else the gateway's
	// Metadata["cursor"] (where a Watch of new messages that got none started); empty when there
	// is none. The gateway's own word (the last message it wrote, which a broken connection may
	// have lost) is that metadata.
	ResumeCursor string

	// From google.rpc.ErrorInfo (domain "twilio-gateway"): a stable reason such as
	// INVALID_REQUEST or OUTCOME_UNKNOWN, and the metadata (idempotency_key, attempts,
	// subscription_may_exist, replayed, ...). Empty when the error did not come from the gateway
	// (a deadline that ended in the client, a gateway that could not be reached).
	Reason   string
	Domain   string
	Metadata map[string]string
	// SubscriptionMayExist is false only when the gateway says no attempt can have created a
	// subscription (metadata subscription_may_exist: false); without the gateway's word it is
	// true.
	SubscriptionMayExist bool
	// MessageMayExist is the same for a Send (metadata message_may_exist: false); true without
	// the gateway's word.
	MessageMayExist bool
	// Attempts is how many times the gateway called Twilio (metadata attempts; 0 when absent).
	Attempts int
	// Replayed is true when this is the stored outcome of an earlier call with the same key.
	Replayed bool

	// FieldViolations are google.rpc.BadRequest's: which request field is wrong, and why.
	FieldViolations []FieldViolation
	// RetryDelay is google.rpc.RetryInfo's delay: wait this long before retrying with the same
	// key. Zero when the gateway sent no RetryInfo.
	RetryDelay time.Duration
	// TwilioError is what Twilio answered (its code, message, more_info link and HTTP status),
	// when the error came from Twilio; nil otherwise.
	TwilioError *v1.TwilioError

	// RequestID is the gateway's id for the call (x-request-id), as in its audit log; empty when
	// the gateway sent none.
	RequestID string

	status *status.Status
}

// FieldViolation names an invalid request field (google.rpc.BadRequest.FieldViolation).
type FieldViolation struct {
	Field       string // as in the proto: "call_sid", "callback", ...
	Description string
}

// Error reads like the CLI's first line: "INVALID_ARGUMENT: <message> (reason ..., idempotency
// key ...)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s (", CodeName(e.Code), e.Message)
	if e.Reason != "" {
		fmt.Fprintf(&b, "reason %s, ", e.Reason)
	}
	if e.ResumeCursor != "" {
		fmt.Fprintf(&b, "%s, resume cursor %s)", e.Operation, e.ResumeCursor)
	} else if e.IdempotencyKey == "" {
		fmt.Fprintf(&b, "%s)", e.Operation)
	} else {
		fmt.Fprintf(&b, "idempotency key %s)", e.IdempotencyKey)
	}
	return b.String()
}

// GRPCStatus is the status the gateway sent, with every detail (also the ones this type does not
// decode).
func (e *Error) GRPCStatus() *status.Status { return e.status }

// NextStep says what to do next, by operation, code and reason (see NextStepFor).
func (e *Error) NextStep() string { return NextStepFor(e.Operation, e.Code, e.Reason) }

// NextStep says what to do with a Create error's idempotency key next (NextStepFor with
// OperationCreate).
func NextStep(code codes.Code, reason string) string {
	return NextStepFor(OperationCreate, code, reason)
}

// NextStepFor says what to do next after an error of op: the words of the C++ client's NextStep
// (client/cpp/subscription_client.cc), from README "Exactly once: the contract". For Create and
// Send it is about the idempotency key; a Delete has none and is always safe to repeat; a Watch
// resumes with its cursor (README, "Receiving messages").
func NextStepFor(op Operation, code codes.Code, reason string) string {
	if op == OperationWatch {
		switch code {
		case codes.OutOfRange:
			return "messages after the cursor may be lost: watch again without it (from_oldest " +
				"for what is still kept)"
		case codes.InvalidArgument:
			return "fix the request: retrying it unchanged cannot succeed"
		case codes.PermissionDenied, codes.Unauthenticated:
			return "retrying changes nothing until the cause is fixed"
		case codes.FailedPrecondition:
			return "the gateway receives no messages: ask its operator to configure its webhook"
		default:
			return "watch again with the resume cursor: nothing it still keeps after it is lost"
		}
	}
	if op == OperationDelete {
		switch code {
		case codes.InvalidArgument:
			return "fix the request: retrying it unchanged cannot succeed"
		case codes.NotFound:
			return "there is no such subscription, call or account: do not retry"
		case codes.PermissionDenied, codes.Unauthenticated:
			return "retrying changes nothing until the cause is fixed"
		default:
			return "retry the delete: deleting again is always safe"
		}
	}
	verb := "create"
	if op == OperationSend {
		verb = "send"
	}
	switch code {
	case codes.InvalidArgument:
		return "fix the request and use a new key: retrying this one cannot succeed"
	case codes.Unknown:
		if reason == "OUTCOME_UNKNOWN" {
			if op == OperationSend {
				return "the message may or may not have been sent and the gateway will not send " +
					"this key again; a new key may send it a second time"
			}
			return "the subscription may or may not exist and the gateway will not send this key " +
				"again; a new key may create a second one"
		}
		return "retry with it to repeat this " + verb + " safely"
	case codes.FailedPrecondition:
		if reason == "IDEMPOTENCY_KEY_REUSED" {
			return "this key belongs to another request: use a new key"
		}
		return "retrying with it is safe once the cause is fixed"
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated:
		return "retrying with it changes nothing until the cause is fixed"
	default:
		return "retry with it to repeat this " + verb + " safely"
	}
}

// DecodeError turns an error of the generated SubscriptionServiceClient's Create into an *Error,
// for callers that use the stub directly; idempotencyKey is the key the request carried. Create
// does this itself. DecodeErrorFor does it for any operation.
func DecodeError(err error, idempotencyKey string) *Error {
	return decodeError(err, idempotencyKey, "", OperationCreate)
}

// DecodeErrorFor is DecodeError for an error of op (a Delete's key is "").
func DecodeErrorFor(op Operation, err error, idempotencyKey string) *Error {
	return decodeError(err, idempotencyKey, "", op)
}

func decodeError(err error, key, requestID string, op Operation) *Error {
	st, ok := status.FromError(err)
	if !ok {
		// Not a gRPC status (the stub never returns one of these): keep its text.
		st = status.New(codes.Unknown, err.Error())
	}
	out := &Error{
		Code:                 st.Code(),
		Message:              st.Message(),
		IdempotencyKey:       key,
		Operation:            op,
		SubscriptionMayExist: true,
		MessageMayExist:      true,
		RequestID:            requestID,
		status:               st,
	}
	// Details of a type this binary does not know come back as errors; they stay in GRPCStatus.
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			out.Reason = d.GetReason()
			out.Domain = d.GetDomain()
			out.Metadata = d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out.FieldViolations = append(out.FieldViolations,
					FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			if delay, err := ptypes.Duration(d.GetRetryDelay()); err == nil && delay > 0 {
				out.RetryDelay = delay
			}
		case *v1.TwilioError:
			out.TwilioError = d
		}
	}
	if out.Metadata["subscription_may_exist"] == "false" {
		out.SubscriptionMayExist = false
	}
	if out.Metadata["message_may_exist"] == "false" {
		out.MessageMayExist = false
	}
	if attempts, err := strconv.Atoi(out.Metadata["attempts"]); err == nil {
		out.Attempts = attempts
	}
	out.Replayed = out.Metadata["replayed"] == "true"
	return out
}

var codeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED"}

// CodeName is the code as the proto and the README write it ("INVALID_ARGUMENT"; grpc-go's
// String() says "InvalidArgument"); "UNKNOWN" outside the canonical codes, as the C++ client.
func CodeName(code codes.Code) string {
	if int(code) < len(codeNames) {
		return codeNames[code]
	}
	return "UNKNOWN"
}
