package gateway_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/golang/protobuf/ptypes"
	anypb "github.com/golang/protobuf/ptypes/any"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/twilio-gateway/client/go/gateway"
	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// anyOf packs a detail the way the C++ gateway does: type URL "type.googleapis.com/<full name>".
func anyOf(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := ptypes.MarshalAny(m)
	if err != nil {
		t.Fatalf("MarshalAny: %v", err)
	}
	return a
}

// wireError is what the client sees after grpc-go decoded a grpc-status-details-bin trailer.
func wireError(t *testing.T, code codes.Code, message string, details ...*anypb.Any) error {
	t.Helper()
	bytes, err := proto.Marshal(&spb.Status{Code: int32(code), Message: message, Details: details})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var decoded spb.Status
	if err := proto.Unmarshal(bytes, &decoded); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	return status.ErrorProto(&decoded)
}

func TestDecodeErrorReadsEveryDetail(t *testing.T) {
	err := wireError(t, codes.ResourceExhausted, "Twilio kept throttling",
		anyOf(t, &errdetails.ErrorInfo{Reason: "TWILIO_THROTTLED", Domain: "twilio-gateway",
			Metadata: map[string]string{"idempotency_key": "key-1", "attempts": "2",
				"subscription_may_exist": "false", "replayed": "true"}}),
		anyOf(t, &errdetails.RetryInfo{RetryDelay: ptypes.DurationProto(1500 * time.Millisecond)}),
		anyOf(t, &v1.TwilioError{Code: 20429, Message: "Too Many Requests",
			MoreInfo: "https://www.twilio.com/docs/errors/20429", HttpStatus: 429}))

	got := gateway.DecodeError(err, "key-1")

	if got.Code != codes.ResourceExhausted || got.Message != "Twilio kept throttling" {
		t.Errorf("code, message = %v, %q", got.Code, got.Message)
	}
	if got.Reason != "TWILIO_THROTTLED" || got.Domain != "twilio-gateway" {
		t.Errorf("reason, domain = %q, %q", got.Reason, got.Domain)
	}
	if got.IdempotencyKey != "key-1" || got.Attempts != 2 || got.SubscriptionMayExist || !got.Replayed {
		t.Errorf("key %q, attempts %d, may exist %v, replayed %v: want key-1, 2, false, true",
			got.IdempotencyKey, got.Attempts, got.SubscriptionMayExist, got.Replayed)
	}
	if got.RetryDelay != 1500*time.Millisecond {
		t.Errorf("RetryDelay = %v, want 1.5s", got.RetryDelay)
	}
	if tw := got.TwilioError; tw == nil || tw.GetCode() != 20429 || tw.GetHttpStatus() != 429 ||
		tw.GetMoreInfo() != "https://www.twilio.com/docs/errors/20429" {
		t.Errorf("TwilioError = %v", got.TwilioError)
	}
	if got.FieldViolations != nil {
		t.Errorf("FieldViolations = %v, want none", got.FieldViolations)
	}
	if got.NextStep() != "retry with it to repeat this create safely" {
		t.Errorf("NextStep = %q", got.NextStep())
	}
}

func TestDecodeErrorNamesTheInvalidFields(t *testing.T) {
	err := wireError(t, codes.InvalidArgument, "invalid request",
		anyOf(t, &errdetails.ErrorInfo{Reason: "INVALID_REQUEST", Domain: "twilio-gateway",
			Metadata: map[string]string{"idempotency_key": "k", "subscription_may_exist": "false"}}),
		anyOf(t, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "call_sid", Description: "must match ^CA[0-9a-fA-F]{32}$"},
			{Field: "callback", Description: "must be an absolute http or https URL"},
		}}))

	got := gateway.DecodeError(err, "k")

	want := []gateway.FieldViolation{
		{Field: "call_sid", Description: "must match ^CA[0-9a-fA-F]{32}$"},
		{Field: "callback", Description: "must be an absolute http or https URL"},
	}
	if !reflect.DeepEqual(got.FieldViolations, want) {
		t.Errorf("FieldViolations = %+v, want %+v", got.FieldViolations, want)
	}
	if got.SubscriptionMayExist || got.RetryDelay != 0 || got.TwilioError != nil || got.Replayed {
		t.Errorf("may exist %v, retry delay %v, Twilio %v, replayed %v: want none of them",
			got.SubscriptionMayExist, got.RetryDelay, got.TwilioError, got.Replayed)
	}
	if got.NextStep() != "fix the request and use a new key: retrying this one cannot succeed" {
		t.Errorf("NextStep = %q", got.NextStep())
	}
	if want := "INVALID_ARGUMENT: invalid request (reason INVALID_REQUEST, idempotency key k)"; got.Error() != want {
		t.Errorf("Error() = %q, want %q", got.Error(), want)
	}
}

func TestDecodeErrorKeepsUnknownDetailsInTheStatus(t *testing.T) {
	future := &anypb.Any{TypeUrl: "type.googleapis.com/twilio_gateway.v2.NotYetInvented", Value: []byte{8, 1}}
	err := wireError(t, codes.Unavailable, "Twilio unreachable", future,
		anyOf(t, &errdetails.ErrorInfo{Reason: "TWILIO_UNREACHABLE"}))

	got := gateway.DecodeError(err, "k")

	if got.Reason != "TWILIO_UNREACHABLE" {
		t.Errorf("Reason = %q: a detail after an unknown one must still be read", got.Reason)
	}
	details := got.GRPCStatus().Proto().GetDetails()
	if len(details) != 2 || details[0].GetTypeUrl() != future.TypeUrl {
		t.Errorf("GRPCStatus details = %v, want both, the unknown one first", details)
	}
}

func TestDecodeErrorWithoutDetailsAssumesTheSubscriptionMayExist(t *testing.T) {
	// What grpc-go returns when the deadline ends in the client: no word from the gateway.
	got := gateway.DecodeError(status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "k")

	if got.Code != codes.DeadlineExceeded || got.Reason != "" || got.Metadata != nil {
		t.Errorf("code %v, reason %q, metadata %v", got.Code, got.Reason, got.Metadata)
	}
	if !got.SubscriptionMayExist || got.IdempotencyKey != "k" {
		t.Errorf("may exist %v, key %q: want true, k", got.SubscriptionMayExist, got.IdempotencyKey)
	}
	if got.NextStep() != "retry with it to repeat this create safely" {
		t.Errorf("NextStep = %q", got.NextStep())
	}
}

func TestDecodeErrorOfANonStatusError(t *testing.T) {
	got := gateway.DecodeError(errors.New("boom"), "k")
	if got.Code != codes.Unknown || got.Message != "boom" {
		t.Errorf("code %v, message %q: want UNKNOWN, boom", got.Code, got.Message)
	}
}

func TestErrorIsAGRPCStatus(t *testing.T) {
	var err error = gateway.DecodeError(status.Error(codes.NotFound, "no such call"), "k")
	if status.Code(err) != codes.NotFound {
		t.Errorf("status.Code = %v, want NotFound", status.Code(err))
	}
	var gerr *gateway.Error
	if !errors.As(err, &gerr) || gerr.IdempotencyKey != "k" {
		t.Errorf("errors.As = %v", gerr)
	}
}

func TestCodeName(t *testing.T) {
	for code, want := range map[codes.Code]string{codes.OK: "OK", codes.InvalidArgument: "INVALID_ARGUMENT",
		codes.Unauthenticated: "UNAUTHENTICATED", codes.Code(99): "UNKNOWN"} {
		if got := gateway.CodeName(code); got != want {
			t.Errorf("CodeName(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestNextStepSaysWhatToDoWithTheKey(t *testing.T) {
	const (
		retry    = "retry with it to repeat this create safely"
		newKey   = "fix the request and use a new key: retrying this one cannot succeed"
		unknown  = "the subscription may or may not exist and the gateway will not send this key again; a new key may create a second one"
		reused   = "this key belongs to another request: use a new key"
		fixFirst = "retrying with it is safe once the cause is fixed"
		nothing  = "retrying with it changes nothing until the cause is fixed"
	)
	cases := []struct {
		code   codes.Code
		reason string
		want   string
	}{
		{codes.InvalidArgument, "INVALID_REQUEST", newKey},
		{codes.InvalidArgument, "TWILIO_REJECTED_REQUEST", newKey},
		{codes.Unknown, "OUTCOME_UNKNOWN", unknown},
		{codes.Unknown, "", retry},
		{codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED", reused},
		{codes.FailedPrecondition, "CALL_NOT_ACTIVE", fixFirst},
		{codes.NotFound, "CALL_NOT_FOUND", nothing},
		{codes.PermissionDenied, "CALLER_NOT_ALLOWED", nothing},
		{codes.Unauthenticated, "CALLER_UNAUTHENTICATED", nothing},
		{codes.Unavailable, "OUTCOME_RESOLVING", retry},
		{codes.DeadlineExceeded, "", retry},
		{codes.ResourceExhausted, "TWILIO_THROTTLED", retry},
		{codes.Internal, "GATEWAY_CREDENTIALS_REJECTED", retry},
	}
	for _, c := range cases {
		if got := gateway.NextStep(c.code, c.reason); got != c.want {
			t.Errorf("NextStep(%v, %q) = %q, want %q", c.code, c.reason, got, c.want)
		}
	}
}

// The advice must stay word for word the C++ client's (client/cpp/subscription_client.cc,
// NextStep, which the CLI prints). Skipped only where the module is used outside this repository.
func TestNextStepHasTheWordsOfTheCLI(t *testing.T) {
	source, err := os.ReadFile(filepath.Join("..", "..", "cpp", "subscription_client.cc"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("client/cpp/subscription_client.cc not here: the module is outside its repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	body := string(source)
	start := strings.Index(body, "const char* NextStep(")
	if start < 0 {
		t.Fatal("no NextStep in client/cpp/subscription_client.cc")
	}
	body = body[start:]
	body = body[:strings.Index(body, "\n}\n")]
	// Every sentence: adjacent string literals joined, except the reasons it compares with.
	literal := regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
	var cli []string
	for _, m := range regexp.MustCompile(`(?:"(?:[^"\\]|\\.)*"\s*)+`).FindAllStringIndex(body, -1) {
		if strings.HasSuffix(strings.TrimSpace(body[:m[0]]), "==") {
			continue
		}
		var text strings.Builder
		for _, part := range literal.FindAllStringSubmatch(body[m[0]:m[1]], -1) {
			text.WriteString(part[1])
		}
		cli = append(cli, text.String())
	}

	seen := map[string]bool{}
	for _, op := range []gateway.Operation{gateway.OperationCreate, gateway.OperationDelete,
		gateway.OperationSend, gateway.OperationWatch} {
		for code := codes.OK; code <= codes.Unauthenticated; code++ {
			for _, reason := range []string{"", "OUTCOME_UNKNOWN", "IDEMPOTENCY_KEY_REUSED"} {
				seen[gateway.NextStepFor(op, code, reason)] = true
			}
		}
	}
	var ours []string
	for s := range seen {
		ours = append(ours, s)
	}
	cliSet := map[string]bool{}
	for _, s := range cli {
		cliSet[s] = true
	}
	cli = cli[:0]
	for s := range cliSet {
		cli = append(cli, s)
	}
	sort.Strings(ours)
	sort.Strings(cli)
	if !reflect.DeepEqual(ours, cli) {
		t.Errorf("NextStep's sentences differ from the CLI's:\n go:  %q\n cli: %q", ours, cli)
	}
}

func TestDecodeErrorOfASendReadsMessageMayExist(t *testing.T) {
	err := wireError(t, codes.Unavailable, "Twilio kept failing",
		anyOf(t, &errdetails.ErrorInfo{Reason: "TWILIO_UNAVAILABLE", Domain: "twilio-gateway",
			Metadata: map[string]string{"idempotency_key": "k", "attempts": "3",
				"message_may_exist": "false"}}))
	got := gateway.DecodeErrorFor(gateway.OperationSend, err, "k")
	if got.MessageMayExist || got.Attempts != 3 || got.Operation != gateway.OperationSend {
		t.Errorf("got MessageMayExist %v, Attempts %d, Operation %q; want false, 3, send",
			got.MessageMayExist, got.Attempts, got.Operation)
	}
	if want := "retry with it to repeat this send safely"; got.NextStep() != want {
		t.Errorf("NextStep() = %q, want %q", got.NextStep(), want)
	}
	// Without the gateway's word the message may have been sent.
	if none := gateway.DecodeErrorFor(gateway.OperationSend,
		status.Error(codes.DeadlineExceeded, "deadline"), "k"); !none.MessageMayExist {
		t.Error("MessageMayExist = false without the gateway's word")
	}
}

func TestNextStepOfADeleteNeedsNoKey(t *testing.T) {
	err := gateway.DecodeErrorFor(gateway.OperationDelete, status.Error(codes.NotFound, "gone"), "")
	if want := "there is no such subscription, call or account: do not retry"; err.NextStep() != want {
		t.Errorf("NextStep() = %q, want %q", err.NextStep(), want)
	}
	if strings.Contains(err.Error(), "idempotency key") {
		t.Errorf("Error() = %q names a key a delete does not have", err.Error())
	}
	if got := gateway.NextStepFor(gateway.OperationDelete, codes.Unavailable, ""); got !=
		"retry the delete: deleting again is always safe" {
		t.Errorf("NextStepFor(delete, UNAVAILABLE) = %q", got)
	}
}
