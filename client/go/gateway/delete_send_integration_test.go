package gateway_test

// Delete and Send against the real gateway and the Twilio simulator (see integration_test.go),
// by the contract (proto/twilio_gateway/v1/*.proto).

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"example.com/twilio-gateway/client/go/gateway"
	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// messagesSentWith is how many messages the simulator sent with the key, and how many requests
// carried it.
func messagesSentWith(t *testing.T, key string) (requests, messages int) {
	t.Helper()
	stats, _ := simulator(t, http.MethodGet, "/_sim/stats", nil)["messages_by_key"].(map[string]interface{})
	for name, value := range stats {
		if counts, _ := value.(map[string]interface{}); strings.HasSuffix(name, "/"+key) {
			requests += int(counts["requests"].(float64))
			messages += int(counts["messages"].(float64))
		}
	}
	return requests, messages
}

func TestIntegrationDeleteThenDeleteAgain(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_TARGET")[0], gateway.Options{})
	created, err := client.Create(testContext(t), &v1.CreateSubscriptionRequest{
		CallSid: activeCall, Callback: callback})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	request := &v1.DeleteSubscriptionRequest{CallSid: activeCall, Sid: created.Subscription.GetSid()}
	deleted, err := client.Delete(testContext(t), request)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if deleted.RequestID == "" {
		t.Error("no request id")
	}

	_, err = client.Delete(testContext(t), request)
	gerr := asError(t, err)
	if gerr.Code != codes.NotFound || gerr.TwilioError.GetCode() != 20404 ||
		gerr.Operation != gateway.OperationDelete || gerr.IdempotencyKey != "" {
		t.Errorf("second Delete: %v (Twilio %v), want NOT_FOUND with 20404 and no key", gerr,
			gerr.TwilioError)
	}
}

func TestIntegrationDeleteWhoseAnswerWasLostSucceeds(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_TARGET")[0], gateway.Options{})
	created, err := client.Create(testContext(t), &v1.CreateSubscriptionRequest{
		CallSid: activeCall, Callback: callback})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	simulator(t, http.MethodPost, "/_sim/faults", map[string]interface{}{"rules": []interface{}{
		map[string]interface{}{"operation": "delete", "drop": "after", "count": 1}}})
	t.Cleanup(func() { simulator(t, http.MethodDelete, "/_sim/faults", nil) })
	if _, err := client.Delete(testContext(t), &v1.DeleteSubscriptionRequest{
		CallSid: activeCall, Sid: created.Subscription.GetSid()}); err != nil {
		t.Fatalf("Delete after a lost answer: %v", err)
	}
}

func TestIntegrationSendOncePerKey(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_TARGET")[0], gateway.Options{})
	key := uniqueKey(t)
	request := &v1.SendMessageRequest{CallSid: activeCall, Content: `{"text":"hi"}`,
		IdempotencyKey: key}
	first, err := client.Send(testContext(t), request)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	message := first.Message
	if !strings.HasPrefix(message.GetSid(), "KX") || message.GetCallSid() != activeCall ||
		message.GetIdempotencyKey() != key || message.GetDateCreated() == nil || first.Replayed {
		t.Errorf("first Send: %+v (replayed %v)", message, first.Replayed)
	}
	second, err := client.Send(testContext(t), request)
	if err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if second.Message.GetSid() != message.GetSid() || !second.Replayed {
		t.Errorf("second Send: sid %s replayed %v, want %s replayed", second.Message.GetSid(),
			second.Replayed, message.GetSid())
	}
	if requests, messages := messagesSentWith(t, key); requests != 1 || messages != 1 {
		t.Errorf("simulator: %d requests, %d messages for the key; want 1, 1", requests, messages)
	}
}

func TestIntegrationSendGeneratesTheKey(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_TARGET")[0], gateway.Options{})
	request := &v1.SendMessageRequest{CallSid: activeCall, Content: "[1,2]"}
	sent, err := client.Send(testContext(t), request)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(sent.IdempotencyKey) != 36 || sent.Message.GetIdempotencyKey() != sent.IdempotencyKey {
		t.Errorf("key %q, message's %q", sent.IdempotencyKey, sent.Message.GetIdempotencyKey())
	}
	if request.IdempotencyKey != "" {
		t.Error("Send modified the caller's request")
	}
}

func TestIntegrationSendOfContentThatIsNotJSON(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_TARGET")[0], gateway.Options{})
	key := uniqueKey(t)
	_, err := client.Send(testContext(t), &v1.SendMessageRequest{CallSid: activeCall,
		Content: "{not json", IdempotencyKey: key})
	gerr := asError(t, err)
	if gerr.Code != codes.InvalidArgument || len(gerr.FieldViolations) != 1 ||
		gerr.FieldViolations[0].Field != "content" || gerr.MessageMayExist {
		t.Errorf("got %v, violations %+v, MessageMayExist %v; want INVALID_ARGUMENT naming "+
			"content, nothing sent", gerr, gerr.FieldViolations, gerr.MessageMayExist)
	}
	if requests, _ := messagesSentWith(t, key); requests != 0 {
		t.Errorf("%d requests reached the simulator", requests)
	}
}

func TestIntegrationSendToACallThatIsNotActive(t *testing.T) {
	client := dial(t, env(t, "TEST_GATEWAY_TARGET")[0], gateway.Options{})
	inactive := "CA00000000000000000000000000031211"
	simulator(t, http.MethodPut, "/_sim/calls/"+inactive, map[string]string{"state": "completed"})
	_, err := client.Send(testContext(t), &v1.SendMessageRequest{CallSid: inactive, Content: "{}"})
	gerr := asError(t, err)
	if gerr.Code != codes.FailedPrecondition || gerr.TwilioError.GetCode() != 31211 ||
		gerr.MessageMayExist || gerr.Attempts != 1 {
		t.Errorf("got %v (Twilio %v, may exist %v, attempts %d); want FAILED_PRECONDITION, "+
			"31211, nothing sent, 1 attempt", gerr, gerr.TwilioError, gerr.MessageMayExist,
			gerr.Attempts)
	}
}
