package gateway_test

// Tests against the real gateway and the Twilio simulator. client/go/test.sh starts them (with
// tests/clients/fixture.sh) and sets these variables; without them the tests skip, so a plain
// `go test ./...` needs nothing running.
//
//	TEST_GATEWAY_TARGET       a plaintext gateway, host:port
//	TEST_GATEWAY_TLS_TARGET   a gateway wanting TLS and a bearer token or client certificate
//	TEST_GATEWAY_CA_FILE      the CA its certificate chains to
//	TEST_GATEWAY_TOKEN        a bearer token it accepts
//	TEST_GATEWAY_CLIENT_CERT, TEST_GATEWAY_CLIENT_KEY   a client certificate its policy allows
//	TEST_SIMULATOR_URL        the simulator the gateways call, http://host:port
//	TEST_GATEWAY_WEBHOOK_TARGET, TEST_GATEWAY_WEBHOOK_URL   a plaintext gateway that receives
//	                          Twilio's deliveries (Watch), and its --public-webhook-url

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"example.com/twilio-gateway/client/go/gateway"
	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

const (
	activeCall = "CA0123456789abcdef0123456789abcdef"
	callback   = "https://example.com/twilio/messages"
)

// env returns the variables' values, or skips the test when one is unset.
func env(t *testing.T, names ...string) []string {
	t.Helper()
	var values []string
	for _, name := range names {
		value := os.Getenv(name)
		if value == "" {
			t.Skipf("%s not set: no gateway to test against (client/go/test.sh sets it)", name)
		}
		values = append(values, value)
	}
	return values
}

func dial(t *testing.T, target string, options gateway.Options) *gateway.Client {
	t.Helper()
	client, err := gateway.Dial(target, options)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// uniqueKey is a key no earlier run has used against the same simulator.
func uniqueKey(t *testing.T) string {
	key, err := gateway.NewIdempotencyKey()
	if err != nil {
		t.Fatal(err)
	}
	return "go-" + t.Name() + "-" + key
}

// simulator calls the simulator's admin API (tests/twilio_simulator/README.md).
func simulator(t *testing.T, method, path string, body interface{}) map[string]interface{} {
	t.Helper()
	base := env(t, "TEST_SIMULATOR_URL")[0]
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, strings.TrimRight(base, "/")+path, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("simulator %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]interface{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("simulator %s %s: status %d, %v", method, path, resp.StatusCode, err)
	}
	return out
}

// subscriptionsMadeWith is how many subscriptions the simulator created with the key.
func subscriptionsMadeWith(t *testing.T, key string) int {
	t.Helper()
	made := 0
	all, _ := simulator(t, http.MethodGet, "/_sim/subscriptions", nil)["subscriptions"].([]interface{})
	for _, s := range all {
		if sub, _ := s.(map[string]interface{}); sub["idempotency_key"] == key {
			made++
		}
	}
	return made
}

func asError(t *testing.T, err error) *gateway.Error {
	t.Helper()
	var gerr *gateway.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error %T %v, want a *gateway.Error", err, err)
	}
	return gerr
}

func TestIntegrationSuccess(t *testing.T) {
	target := env(t, "TEST_GATEWAY_TARGET")[0]
	client := dial(t, target, gateway.Options{})

	result, err := client.Create(testContext(t), &v1.CreateSubscriptionRequest{
		CallSid: activeCall, Callback: callback, Method: v1.CallbackMethod_CALLBACK_METHOD_GET})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	sub := result.Subscription
	if !strings.HasPrefix(sub.GetSid(), "ZY") || sub.GetCallSid() != activeCall ||
		!strings.HasPrefix(sub.GetAccountSid(), "AC") || sub.GetDateCreated() == nil {
		t.Errorf("subscription %v", sub)
	}
	if !uuidV4.MatchString(result.IdempotencyKey) || sub.GetIdempotencyKey() != result.IdempotencyKey {
		t.Errorf("key %q (the gateway's: %q): want the client's UUID v4 in both",
			result.IdempotencyKey, sub.GetIdempotencyKey())
	}
	if result.Replayed || result.RequestID == "" {
		t.Errorf("replayed %v, request id %q: want a first answer with an id", result.Replayed, result.RequestID)
	}
	if made := subscriptionsMadeWith(t, result.IdempotencyKey); made != 1 {
		t.Errorf("the simulator made %d subscriptions with the key, want 1", made)
	}
}

func TestIntegrationInvalidRequestNamesTheField(t *testing.T) {
	target := env(t, "TEST_GATEWAY_TARGET")[0]
	client := dial(t, target, gateway.Options{})
	key := uniqueKey(t)

	_, err := client.Create(testContext(t), &v1.CreateSubscriptionRequest{
		CallSid: "CA-not-a-call", Callback: callback, IdempotencyKey: key})

	gerr := asError(t, err)
	if gerr.Code != codes.InvalidArgument || gerr.Reason != "INVALID_REQUEST" || gerr.Domain != "twilio-gateway" {
		t.Errorf("code %v, reason %q, domain %q: want INVALID_ARGUMENT, INVALID_REQUEST, twilio-gateway",
			gerr.Code, gerr.Reason, gerr.Domain)
	}
	if len(gerr.FieldViolations) != 1 || gerr.FieldViolations[0].Field != "call_sid" ||
		gerr.FieldViolations[0].Description == "" {
		t.Errorf("field violations %+v, want call_sid with a description", gerr.FieldViolations)
	}
	if gerr.IdempotencyKey != key || gerr.Metadata["idempotency_key"] != key {
		t.Errorf("key %q, ErrorInfo's %q: want %q", gerr.IdempotencyKey, gerr.Metadata["idempotency_key"], key)
	}
	if gerr.SubscriptionMayExist || gerr.Attempts != 0 {
		t.Errorf("may exist %v after %d attempts: the gateway checked it before calling Twilio",
			gerr.SubscriptionMayExist, gerr.Attempts)
	}
	if want := "fix the request and use a new key: retrying this one cannot succeed"; gerr.NextStep() != want {
		t.Errorf("NextStep %q, want %q", gerr.NextStep(), want)
	}
}

func TestIntegrationRetryWithTheSameKeyReplaysTheFirstAnswer(t *testing.T) {
	target := env(t, "TEST_GATEWAY_TARGET")[0]
	client := dial(t, target, gateway.Options{})
	req := &v1.CreateSubscriptionRequest{CallSid: activeCall, Callback: callback, IdempotencyKey: uniqueKey(t)}

	first, err := client.Create(testContext(t), req)
	if err != nil {
		t.Fatalf("first Create: %v", err)
	}
	second, err := client.Create(testContext(t), req)
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}

	if first.Replayed || !second.Replayed {
		t.Errorf("replayed %v then %v: want false, then true (trailer idempotent-replay)",
			first.Replayed, second.Replayed)
	}
	if second.Subscription.GetSid() != first.Subscription.GetSid() || second.IdempotencyKey != req.IdempotencyKey {
		t.Errorf("second answer %v, want the first's subscription %s", second.Subscription,
			first.Subscription.GetSid())
	}
	if made := subscriptionsMadeWith(t, req.IdempotencyKey); made != 1 {
		t.Errorf("the simulator made %d subscriptions with the key, want 1", made)
	}
}

func TestIntegrationTLSWithAToken(t *testing.T) {
	values := env(t, "TEST_GATEWAY_TLS_TARGET", "TEST_GATEWAY_CA_FILE", "TEST_GATEWAY_TOKEN")
	target, ca, token := values[0], values[1], values[2]
	req := &v1.CreateSubscriptionRequest{CallSid: activeCall, Callback: callback}

	result, err := dial(t, target, gateway.Options{CAFile: ca, BearerToken: token}).Create(testContext(t), req)
	if err != nil {
		t.Fatalf("Create over TLS with the token: %v", err)
	}
	if !strings.HasPrefix(result.Subscription.GetSid(), "ZY") {
		t.Errorf("subscription %v", result.Subscription)
	}

	// The same gateway without the token, and with a wrong one: nobody reaches Twilio.
	for name, options := range map[string]gateway.Options{
		"no token":    {CAFile: ca},
		"wrong token": {CAFile: ca, BearerToken: token + "-wrong"},
	} {
		_, err := dial(t, target, options).Create(testContext(t), req)
		gerr := asError(t, err)
		if gerr.Code != codes.Unauthenticated || gerr.Reason != "CALLER_UNAUTHENTICATED" {
			t.Errorf("%s: code %v, reason %q: want UNAUTHENTICATED, CALLER_UNAUTHENTICATED", name,
				gerr.Code, gerr.Reason)
		}
		if want := "retrying with it changes nothing until the cause is fixed"; gerr.NextStep() != want {
			t.Errorf("%s: NextStep %q, want %q", name, gerr.NextStep(), want)
		}
	}
}

func TestIntegrationMutualTLS(t *testing.T) {
	values := env(t, "TEST_GATEWAY_TLS_TARGET", "TEST_GATEWAY_CA_FILE", "TEST_GATEWAY_CLIENT_CERT",
		"TEST_GATEWAY_CLIENT_KEY")
	client := dial(t, values[0], gateway.Options{CAFile: values[1], CertFile: values[2], KeyFile: values[3]})

	result, err := client.Create(testContext(t), &v1.CreateSubscriptionRequest{CallSid: activeCall, Callback: callback})
	if err != nil {
		t.Fatalf("Create with a client certificate: %v", err)
	}
	if !strings.HasPrefix(result.Subscription.GetSid(), "ZY") {
		t.Errorf("subscription %v", result.Subscription)
	}
}

func TestIntegrationDeadline(t *testing.T) {
	target := env(t, "TEST_GATEWAY_TARGET", "TEST_SIMULATOR_URL")[0]
	client := dial(t, target, gateway.Options{})
	// Twilio (the simulator) takes 2 s to answer; the caller gives the whole call 500 ms.
	simulator(t, http.MethodPost, "/_sim/config", map[string]interface{}{"delay_ms": 2000})
	t.Cleanup(func() { simulator(t, http.MethodPost, "/_sim/config", map[string]interface{}{"delay_ms": 0}) })
	req := &v1.CreateSubscriptionRequest{CallSid: activeCall, Callback: callback}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err := client.Create(ctx, req)
	elapsed := time.Since(started)

	// Twilio may have acted on the attempt the deadline cut short. Whichever side notices the
	// deadline first answers: grpc-go (DEADLINE_EXCEEDED, no details) or the gateway, which then
	// resolves the outcome in the background (UNAVAILABLE, OUTCOME_RESOLVING; README, "Exactly
	// once"). Both leave the key with the caller and say to retry with it.
	gerr := asError(t, err)
	answered := strings.TrimSpace(gateway.CodeName(gerr.Code) + " " + gerr.Reason)
	if answered != "DEADLINE_EXCEEDED" && answered != "UNAVAILABLE OUTCOME_RESOLVING" {
		t.Fatalf("answer %s (%v), want DEADLINE_EXCEEDED or UNAVAILABLE OUTCOME_RESOLVING", answered, gerr)
	}
	t.Logf("answered %s after %v", answered, elapsed.Round(time.Millisecond))
	if !uuidV4.MatchString(gerr.IdempotencyKey) {
		t.Errorf("key %q: want the UUID v4 the client generated before sending", gerr.IdempotencyKey)
	}
	if elapsed > 1500*time.Millisecond {
		t.Errorf("the call took %v with a 500 ms deadline", elapsed)
	}
	if !gerr.SubscriptionMayExist {
		t.Errorf("may exist false: the request had reached Twilio when the deadline came")
	}
	if want := "retry with it to repeat this create safely"; gerr.NextStep() != want {
		t.Errorf("NextStep %q, want %q", gerr.NextStep(), want)
	}

	// Doing what NextStep says once Twilio is quick again: the same key ends with one
	// subscription.
	simulator(t, http.MethodPost, "/_sim/config", map[string]interface{}{"delay_ms": 0})
	retry := &v1.CreateSubscriptionRequest{CallSid: activeCall, Callback: callback, IdempotencyKey: gerr.IdempotencyKey}
	result, err := client.Create(testContext(t), retry)
	if err != nil {
		t.Fatalf("retry with the key: %v", err)
	}
	if result.Subscription.GetIdempotencyKey() != gerr.IdempotencyKey {
		t.Errorf("retry answered key %q, want %q", result.Subscription.GetIdempotencyKey(), gerr.IdempotencyKey)
	}
	if made := subscriptionsMadeWith(t, gerr.IdempotencyKey); made != 1 {
		t.Errorf("the simulator made %d subscriptions with the key, want 1", made)
	}
}

func TestIntegrationDeadlineTheGatewayCannotMeetIsAnsweredAtOnce(t *testing.T) {
	target := env(t, "TEST_GATEWAY_TARGET", "TEST_SIMULATOR_URL")[0]
	client := dial(t, target, gateway.Options{})
	// Twilio throttles and asks for 5 s: no retry fits in a 1 s deadline.
	throttled := "CA00000000000000000000000000000503"
	simulator(t, http.MethodPost, "/_sim/faults", map[string]interface{}{"rules": []interface{}{
		map[string]interface{}{"status": 429, "retry_after": "5", "call_sid": throttled}}})
	t.Cleanup(func() { simulator(t, http.MethodDelete, "/_sim/faults", nil) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	started := time.Now()
	_, err := client.Create(ctx, &v1.CreateSubscriptionRequest{CallSid: throttled, Callback: callback})
	elapsed := time.Since(started)

	gerr := asError(t, err)
	if gerr.Code != codes.DeadlineExceeded || gerr.Reason != "DEADLINE_EXCEEDED" {
		t.Fatalf("code %v, reason %q (%v): want the gateway's DEADLINE_EXCEEDED", gerr.Code, gerr.Reason, gerr)
	}
	if elapsed > 900*time.Millisecond {
		t.Errorf("the gateway answered after %v, not at once", elapsed)
	}
	if gerr.RetryDelay != 5*time.Second {
		t.Errorf("RetryDelay %v, want Twilio's 5 s", gerr.RetryDelay)
	}
	if gerr.TwilioError.GetCode() != 20429 || gerr.TwilioError.GetHttpStatus() != 429 {
		t.Errorf("TwilioError %v, want 20429 / HTTP 429", gerr.TwilioError)
	}
	if !uuidV4.MatchString(gerr.IdempotencyKey) || gerr.Metadata["idempotency_key"] != gerr.IdempotencyKey {
		t.Errorf("key %q, ErrorInfo's %q", gerr.IdempotencyKey, gerr.Metadata["idempotency_key"])
	}
	if gerr.SubscriptionMayExist {
		t.Errorf("may exist true: Twilio never processed a throttled request")
	}
	if want := "retry with it to repeat this create safely"; gerr.NextStep() != want {
		t.Errorf("NextStep %q, want %q", gerr.NextStep(), want)
	}
}

// The README's example, run against the gateway.
func TestIntegrationReadmeExample(t *testing.T) {
	target := env(t, "TEST_GATEWAY_TARGET")[0]
	var out bytes.Buffer
	if err := createSubscription(&out, target); err != nil {
		t.Fatalf("example: %v", err)
	}
	if !strings.HasPrefix(out.String(), "created ZY") {
		t.Errorf("example printed %q", out.String())
	}
}
