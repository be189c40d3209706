package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"example.com/twilio-gateway/client/go/gateway"
	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// fakeGateway answers Create in memory: with a subscription (and the replay trailer the second
// time it sees a key), or with the status in fail.
type fakeGateway struct {
	v1.UnimplementedSubscriptionServiceServer
	v1.UnimplementedMessageServiceServer
	mu       sync.Mutex
	requests []*v1.CreateSubscriptionRequest
	sends    []*v1.SendMessageRequest
	deletes  []*v1.DeleteSubscriptionRequest
	auth     []string
	fail     *status.Status
}

func (f *fakeGateway) Create(ctx context.Context, req *v1.CreateSubscriptionRequest) (*v1.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	replayed := false
	for _, earlier := range f.requests {
		replayed = replayed || earlier.GetIdempotencyKey() == req.GetIdempotencyKey()
	}
	f.requests = append(f.requests, req)
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth = append(f.auth, md.Get("authorization")...)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", "req-7"))
	if f.fail != nil {
		return nil, f.fail.Err()
	}
	if replayed {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("idempotent-replay", "true"))
	}
	return &v1.Subscription{CallSid: req.GetCallSid(), Sid: "ZY00000000000000000000000000000001",
		IdempotencyKey: req.GetIdempotencyKey()}, nil
}

func (f *fakeGateway) Send(ctx context.Context, req *v1.SendMessageRequest) (*v1.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, req)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", "req-8"))
	if f.fail != nil {
		return nil, f.fail.Err()
	}
	return &v1.Message{CallSid: req.GetCallSid(), Sid: "KX00000000000000000000000000000001",
		IdempotencyKey: req.GetIdempotencyKey()}, nil
}

func (f *fakeGateway) Delete(ctx context.Context, req *v1.DeleteSubscriptionRequest) (*v1.DeleteSubscriptionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, req)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", "req-9"))
	if f.fail != nil {
		return nil, f.fail.Err()
	}
	return &v1.DeleteSubscriptionResponse{}, nil
}

// startFake serves fake in memory and returns a client connected to it.
func startFake(t *testing.T, fake *fakeGateway) *gateway.Client {
	t.Helper()
	listener := bufconn.Listen(1 << 20)
	server := grpc.NewServer()
	v1.RegisterSubscriptionServiceServer(server, fake)
	v1.RegisterMessageServiceServer(server, fake)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.Dial("bufnet", grpc.WithInsecure(),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			return listener.Dial()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return gateway.NewClient(conn)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCreateGeneratesTheKeyBeforeSendingAndLeavesTheRequestAlone(t *testing.T) {
	fake := &fakeGateway{}
	client := startFake(t, fake)
	req := &v1.CreateSubscriptionRequest{CallSid: "CA0123456789abcdef0123456789abcdef",
		Callback: "https://example.com/twilio/messages"}

	result, err := client.Create(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}

	if !uuidV4.MatchString(result.IdempotencyKey) {
		t.Errorf("IdempotencyKey = %q, want a UUID v4", result.IdempotencyKey)
	}
	if sent := fake.requests[0].GetIdempotencyKey(); sent != result.IdempotencyKey {
		t.Errorf("sent key %q, result key %q", sent, result.IdempotencyKey)
	}
	if req.IdempotencyKey != "" {
		t.Errorf("the caller's request was changed: key %q", req.IdempotencyKey)
	}
	if result.Replayed || result.RequestID != "req-7" || result.Subscription.GetSid() == "" {
		t.Errorf("replayed %v, request id %q, subscription %v", result.Replayed, result.RequestID,
			result.Subscription)
	}
}

func TestCreateSendsTheCallersKeyAndSeesTheReplay(t *testing.T) {
	fake := &fakeGateway{}
	client := startFake(t, fake)
	req := &v1.CreateSubscriptionRequest{CallSid: "CA0123456789abcdef0123456789abcdef",
		Callback: "https://example.com/twilio/messages", IdempotencyKey: "my-key"}

	first, err := client.Create(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Create(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}

	if first.IdempotencyKey != "my-key" || second.IdempotencyKey != "my-key" {
		t.Errorf("keys %q, %q: want my-key", first.IdempotencyKey, second.IdempotencyKey)
	}
	if first.Replayed || !second.Replayed {
		t.Errorf("replayed %v then %v: want false then true", first.Replayed, second.Replayed)
	}
}

func TestCreateErrorCarriesTheGeneratedKeyAndTheDetails(t *testing.T) {
	failure, err := status.New(codes.Unavailable, "Twilio answered 503").WithDetails(
		&errdetails.ErrorInfo{Reason: "TWILIO_UNAVAILABLE", Domain: "twilio-gateway",
			Metadata: map[string]string{"attempts": "5"}},
		&errdetails.RetryInfo{RetryDelay: nil})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeGateway{fail: failure}
	client := startFake(t, fake)

	_, err = client.Create(testContext(t), &v1.CreateSubscriptionRequest{CallSid: "CA0123456789abcdef0123456789abcdef"})

	var gerr *gateway.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error %T %v, want *gateway.Error", err, err)
	}
	if gerr.Code != codes.Unavailable || gerr.Reason != "TWILIO_UNAVAILABLE" || gerr.Attempts != 5 {
		t.Errorf("code %v, reason %q, attempts %d", gerr.Code, gerr.Reason, gerr.Attempts)
	}
	if gerr.IdempotencyKey == "" || gerr.IdempotencyKey != fake.requests[0].GetIdempotencyKey() {
		t.Errorf("error key %q, sent key %q", gerr.IdempotencyKey, fake.requests[0].GetIdempotencyKey())
	}
	if !gerr.SubscriptionMayExist || gerr.RequestID != "req-7" || gerr.RetryDelay != 0 {
		t.Errorf("may exist %v, request id %q, retry delay %v", gerr.SubscriptionMayExist,
			gerr.RequestID, gerr.RetryDelay)
	}
}

func TestCreateEndsAtTheContextDeadlineWithTheKey(t *testing.T) {
	// Connecting never finishes: the call waits for a connection until its deadline.
	conn, err := grpc.Dial("bufnet", grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	_, err = gateway.NewClient(conn).Create(ctx, &v1.CreateSubscriptionRequest{},
		grpc.WaitForReady(true))

	var gerr *gateway.Error
	if !errors.As(err, &gerr) || gerr.Code != codes.DeadlineExceeded || !uuidV4.MatchString(gerr.IdempotencyKey) {
		t.Fatalf("error %v, want DEADLINE_EXCEEDED with a generated key", err)
	}
}

func TestDialRefusesUnsafeOrIncompleteOptions(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		options gateway.Options
		want    string
	}{
		{"token without TLS", gateway.Options{BearerToken: "t"}, "never sent in the clear"},
		{"cert without key", gateway.Options{CAFile: empty, CertFile: "c.pem"}, "go together"},
		{"key without cert", gateway.Options{CAFile: empty, KeyFile: "k.pem"}, "go together"},
		{"cert without CA", gateway.Options{CertFile: "c.pem", KeyFile: "k.pem"}, "needs TLS"},
		{"missing CA file", gateway.Options{CAFile: filepath.Join(dir, "none.pem")}, "none.pem"},
		{"empty CA file", gateway.Options{CAFile: empty}, "empty.pem holds no PEM certificate"},
	}
	for _, c := range cases {
		client, err := gateway.Dial("127.0.0.1:1", c.options)
		if err == nil {
			client.Close()
			t.Errorf("%s: Dial succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to say %q", c.name, err, c.want)
		}
	}
}

func TestOptionsNeverPrintTheToken(t *testing.T) {
	options := gateway.Options{CAFile: "ca.pem", BearerToken: "secret-token-1234"}
	for _, printed := range []string{fmt.Sprint(options), fmt.Sprintf("%v", options), fmt.Sprintf("%+v", &options)} {
		if strings.Contains(printed, "secret-token-1234") || !strings.Contains(printed, "ca.pem") {
			t.Errorf("options printed as %q", printed)
		}
	}
}

func TestSendGeneratesTheKeyBeforeSendingAndLeavesTheRequestAlone(t *testing.T) {
	fake := &fakeGateway{}
	client := startFake(t, fake)
	request := &v1.SendMessageRequest{CallSid: "CA0123456789abcdef0123456789abcdef",
		Content: `{"text":"hi"}`}
	sent, err := client.Send(testContext(t), request)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(fake.sends) != 1 || fake.sends[0].GetIdempotencyKey() != sent.IdempotencyKey ||
		len(sent.IdempotencyKey) != 36 || fake.sends[0].GetContent() != `{"text":"hi"}` {
		t.Errorf("sent %+v, result key %q", fake.sends, sent.IdempotencyKey)
	}
	if request.IdempotencyKey != "" || sent.RequestID != "req-8" || sent.Message.GetSid() == "" {
		t.Errorf("request %+v, result %+v", request, sent)
	}
}

func TestSendAndDeleteErrorsNameTheirOperation(t *testing.T) {
	fake := &fakeGateway{fail: status.New(codes.Unavailable, "Twilio kept failing")}
	client := startFake(t, fake)
	_, err := client.Send(testContext(t), &v1.SendMessageRequest{IdempotencyKey: "k"})
	var gerr *gateway.Error
	if !errors.As(err, &gerr) || gerr.Operation != gateway.OperationSend ||
		gerr.IdempotencyKey != "k" || !gerr.MessageMayExist || gerr.RequestID != "req-8" {
		t.Fatalf("Send error %#v", err)
	}
	if gerr.NextStep() != "retry with it to repeat this send safely" {
		t.Errorf("NextStep() = %q", gerr.NextStep())
	}
	_, err = client.Delete(testContext(t), &v1.DeleteSubscriptionRequest{
		CallSid: "CA0123456789abcdef0123456789abcdef", Sid: "ZY00000000000000000000000000000001"})
	if !errors.As(err, &gerr) || gerr.Operation != gateway.OperationDelete ||
		gerr.IdempotencyKey != "" || gerr.RequestID != "req-9" {
		t.Fatalf("Delete error %#v", err)
	}
	if gerr.NextStep() != "retry the delete: deleting again is always safe" {
		t.Errorf("NextStep() = %q", gerr.NextStep())
	}
	if len(fake.deletes) != 1 || fake.deletes[0].GetSid() != "ZY00000000000000000000000000000001" {
		t.Errorf("deletes %+v", fake.deletes)
	}
}

// Watch ends at once with the status in fail (a draining gateway's, say).
func (f *fakeGateway) Watch(req *v1.WatchMessagesRequest, stream v1.MessageService_WatchServer) error {
	if f.fail != nil {
		return f.fail.Err()
	}
	return status.Error(codes.Unimplemented, "the fake streams nothing")
}

// A Watch of new messages that ends before any came has no cursor of its own: it resumes where
// the gateway's ErrorInfo says the stream started. Its own cursor, when it has one, comes first.
func TestWatchEndedBeforeAnyMessageResumesWhereTheGatewaySaysItStarted(t *testing.T) {
	failure, err := status.New(codes.Unavailable, "the gateway is shutting down").WithDetails(
		&errdetails.ErrorInfo{Domain: "twilio-gateway", Metadata: map[string]string{"cursor": "1700000000000-3"}})
	if err != nil {
		t.Fatal(err)
	}
	client := startFake(t, &fakeGateway{fail: failure})
	for _, c := range []struct{ own, want string }{{"", "1700000000000-3"}, {"1700000000000-1", "1700000000000-1"}} {
		watch, err := client.Watch(testContext(t), &v1.WatchMessagesRequest{Cursor: c.own})
		if err != nil {
			t.Fatal(err)
		}
		_, err = watch.Recv()
		var ended *gateway.Error
		if !errors.As(err, &ended) {
			t.Fatalf("Recv() = %v, want a *gateway.Error", err)
		}
		if ended.ResumeCursor != c.want {
			t.Errorf("with own cursor %q: ResumeCursor = %q, want %q", c.own, ended.ResumeCursor, c.want)
		}
	}
}
