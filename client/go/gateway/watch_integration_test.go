package gateway_test

// Client.Watch and Create without a callback against the gateway that receives Twilio's
// deliveries (TEST_GATEWAY_WEBHOOK_TARGET; its --public-webhook-url is TEST_GATEWAY_WEBHOOK_URL),
// with the simulator playing the Voice SDK (POST /_sim/deliver signs each message as Twilio does).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"example.com/twilio-gateway/client/go/gateway"
	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// newCall is a call no other test has messages on (the simulator treats every call as in
// progress).
func newCall(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "CA" + hex.EncodeToString(b[:])
}

// receiver dials the gateway with a webhook receiver and subscribes a new call to it (Create
// without a callback).
func receiver(t *testing.T) (*gateway.Client, string) {
	t.Helper()
	client := dial(t, env(t, "TEST_GATEWAY_WEBHOOK_TARGET")[0], gateway.Options{})
	call := newCall(t)
	if _, err := client.Create(testContext(t), &v1.CreateSubscriptionRequest{CallSid: call}); err != nil {
		t.Fatalf("Create without a callback: %v", err)
	}
	return client, call
}

func deliver(t *testing.T, call string, contents ...string) {
	t.Helper()
	answer := simulator(t, http.MethodPost, "/_sim/deliver",
		map[string]interface{}{"call_sid": call, "contents": contents})
	deliveries, _ := answer["deliveries"].([]interface{})
	if len(deliveries) != len(contents) {
		t.Fatalf("deliveries %v, want %d", deliveries, len(contents))
	}
	for _, d := range deliveries {
		if status := d.(map[string]interface{})["status"]; status != 200.0 {
			t.Errorf("delivery answered %v, want 200", d)
		}
	}
}

// watch starts a Watch with a deadline, so that a message that never comes fails the test.
func watch(t *testing.T, client *gateway.Client, req *v1.WatchMessagesRequest,
	timeout time.Duration) *gateway.Watch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	w, err := client.Watch(ctx, req)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return w
}

func take(t *testing.T, w *gateway.Watch, count int) []*v1.CallMessage {
	t.Helper()
	var out []*v1.CallMessage
	for len(out) < count {
		message, err := w.Recv()
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", len(out), err)
		}
		out = append(out, message)
	}
	return out
}

func TestIntegrationCreateWithoutACallbackSubscribesTheGatewaysOwnURL(t *testing.T) {
	url := env(t, "TEST_GATEWAY_WEBHOOK_URL")[0]
	client := dial(t, env(t, "TEST_GATEWAY_WEBHOOK_TARGET")[0], gateway.Options{})
	result, err := client.Create(testContext(t), &v1.CreateSubscriptionRequest{CallSid: newCall(t)})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := simulator(t, http.MethodGet, "/_sim/subscriptions", nil)["subscriptions"].([]interface{})
	found := false
	for _, s := range all {
		if sub, _ := s.(map[string]interface{}); sub["sid"] == result.Subscription.GetSid() {
			found = true
			if sub["callback"] != url {
				t.Errorf("callback %v, want %s", sub["callback"], url)
			}
		}
	}
	if !found {
		t.Errorf("the simulator has no subscription %s", result.Subscription.GetSid())
	}
}

func TestIntegrationWatchStreamsTheDeliveredMessagesAndResumesAfterACursor(t *testing.T) {
	client, call := receiver(t)
	w := watch(t, client, &v1.WatchMessagesRequest{CallSid: call, FromOldest: true}, 30*time.Second)
	deliver(t, call, `{"text":"one"}`, `{"text":"two"}`, "[3]")
	first := take(t, w, 3)
	for i, m := range first {
		if m.GetSequenceNumber() != int64(i) || m.GetCallSid() != call ||
			!strings.HasPrefix(m.GetSid(), "KX") || m.GetContentType() != "application/json" ||
			m.GetTimestamp() == nil || m.GetCursor() == "" {
			t.Errorf("message %d: %v", i, m)
		}
	}
	if first[2].GetContent() != "[3]" {
		t.Errorf("content %q, want [3]", first[2].GetContent())
	}
	if w.Cursor() != first[2].GetCursor() {
		t.Errorf("Cursor %q, want the last message's %q", w.Cursor(), first[2].GetCursor())
	}

	deliver(t, call, "4")
	resumed := watch(t, client, &v1.WatchMessagesRequest{CallSid: call, Cursor: first[1].GetCursor()},
		30*time.Second)
	later := take(t, resumed, 2)
	if later[0].GetSid() != first[2].GetSid() || later[1].GetContent() != "4" {
		t.Errorf("resumed with %v, want the third message, then 4", later)
	}
}

func TestIntegrationWatchEndsWithEOFWhenTheCallerCancels(t *testing.T) {
	client, call := receiver(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := client.Watch(ctx, &v1.WatchMessagesRequest{CallSid: call})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := w.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after cancel: %v, want io.EOF", err)
	}
}

func TestIntegrationWatchErrorCarriesWhereToResume(t *testing.T) {
	client, call := receiver(t)
	w := watch(t, client, &v1.WatchMessagesRequest{CallSid: call, FromOldest: true}, 3*time.Second)
	deliver(t, call, "{}")
	message := take(t, w, 1)[0]
	_, err := w.Recv()
	gerr := asError(t, err)
	if gerr.Code != codes.DeadlineExceeded || gerr.Operation != gateway.OperationWatch {
		t.Fatalf("error %v, want a Watch's DEADLINE_EXCEEDED", gerr)
	}
	if gerr.ResumeCursor != message.GetCursor() {
		t.Errorf("ResumeCursor %q, want the last message's %q", gerr.ResumeCursor, message.GetCursor())
	}
	if want := "watch again with the resume cursor: nothing it still keeps after it is lost"; gerr.NextStep() != want {
		t.Errorf("NextStep %q, want %q", gerr.NextStep(), want)
	}
}

func TestIntegrationWatchOfAMalformedCursorIsInvalidArgument(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_WEBHOOK_TARGET")[0], gateway.Options{})
	w := watch(t, client, &v1.WatchMessagesRequest{Cursor: "not-a-cursor"}, 30*time.Second)
	_, err := w.Recv()
	gerr := asError(t, err)
	if gerr.Code != codes.InvalidArgument || len(gerr.FieldViolations) != 1 ||
		gerr.FieldViolations[0].Field != "cursor" {
		t.Errorf("error %v %v, want INVALID_ARGUMENT naming cursor", gerr, gerr.FieldViolations)
	}
}

func TestIntegrationWatchWithoutAReceiverIsFailedPrecondition(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_TARGET")[0], gateway.Options{})
	w := watch(t, client, &v1.WatchMessagesRequest{}, 30*time.Second)
	_, err := w.Recv()
	if gerr := asError(t, err); gerr.Code != codes.FailedPrecondition || gerr.ResumeCursor != "" {
		t.Errorf("error %v, want FAILED_PRECONDITION without a cursor", gerr)
	}
}
