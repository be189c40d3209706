// Package gateway is the Go client of the Twilio subscription gateway: SubscriptionService's
// Create and Delete and MessageService's Send, one call each, with the caller's deadline, the
// idempotency key of a Create or Send chosen before sending, and the error's rich details decoded
// into *Error.
//
// Usage:
//
//	client, err := gateway.Dial("gateway:50051",
//		gateway.Options{CAFile: "ca.pem", BearerToken: token})
//	defer client.Close()
//	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
//	defer cancel()
//	result, err := client.Create(ctx, &twiliogatewayv1.CreateSubscriptionRequest{
//		CallSid: "CA...", Callback: "https://example.com/twilio/messages"})
//	var gerr *gateway.Error
//	if errors.As(err, &gerr) { ... gerr.IdempotencyKey, gerr.NextStep(), gerr.FieldViolations ... }
//	sent, err := client.Send(ctx, &twiliogatewayv1.SendMessageRequest{
//		CallSid: "CA...", Content: `{"text":"hi"}`})
//	_, err = client.Delete(ctx, &twiliogatewayv1.DeleteSubscriptionRequest{
//		CallSid: "CA...", Sid: result.Subscription.Sid})
//
// When a Create or Send request has no idempotency key, the client generates one (a random UUID
// v4) before sending, so the caller knows the key even when the call times out and can repeat the
// same call safely with it. Delete needs none: deleting again is always safe.
//
// Thread-safety: a Client may be used by many goroutines at once; it holds only the connection.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// Options say how to reach the gateway. The zero value is plaintext without a token: enough for
// a gateway on loopback (a sidecar) without a caller policy.
type Options struct {
	// CAFile turns TLS on: the gateway's certificate must chain to a CA in this PEM file. Empty:
	// plaintext.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key (PEM) for mutual TLS; the
	// certificate's identity names the caller. Both or neither; they need CAFile.
	CertFile string
	KeyFile  string
	// BearerToken is sent as "authorization: Bearer <token>" on every call. It needs TLS
	// (CAFile): like every grpc-go per-RPC credential that says so, it is never sent in the
	// clear.
	BearerToken string
	// DialOptions are added after the ones the fields above make (for example
	// grpc.WithUserAgent, or a grpc.WithBlock the caller wants).
	DialOptions []grpc.DialOption
}

// String leaves the token out, so that logging the options never logs it.
func (o Options) String() string {
	token := ""
	if o.BearerToken != "" {
		token = "(set)"
	}
	return fmt.Sprintf("{CAFile:%s CertFile:%s KeyFile:%s BearerToken:%s DialOptions:%d}",
		o.CAFile, o.CertFile, o.KeyFile, token, len(o.DialOptions))
}

// Client calls the gateway's SubscriptionService and MessageService over one connection.
type Client struct {
	conn     *grpc.ClientConn // nil when made by NewClient: the caller owns the connection
	stub     v1.SubscriptionServiceClient
	messages v1.MessageServiceClient
}

// Dial connects to target ("host:port") as the options say. Like grpc.Dial it does not wait for
// the connection: a gateway that cannot be reached shows up as UNAVAILABLE on the first call.
// Errors name the option or file that is wrong.
func Dial(target string, opts Options) (*Client, error) {
	dialOptions, err := opts.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.Dial(target, append(dialOptions, opts.DialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("gateway: dial %s: %w", target, err)
	}
	return &Client{conn: conn, stub: v1.NewSubscriptionServiceClient(conn),
		messages: v1.NewMessageServiceClient(conn)}, nil
}

// NewClient uses a connection the caller made and keeps owning (Close does not close it). Add
// grpc.WithPerRPCCredentials(gateway.BearerToken(token)) to its dial options for a token.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{stub: v1.NewSubscriptionServiceClient(conn),
		messages: v1.NewMessageServiceClient(conn)}
}

// Close closes the connection Dial made.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Result is a successful Create.
type Result struct {
	Subscription *v1.Subscription
	// IdempotencyKey is the key this call used: the request's, or the one Create generated.
	IdempotencyKey string
	// Replayed is true when the gateway answered with the stored outcome of an earlier call with
	// the same key (trailing metadata "idempotent-replay: true"): no new subscription was made.
	Replayed bool
	// RequestID is the gateway's id for this call (x-request-id), as in its audit log.
	RequestID string
}

// Create subscribes a call to its user-defined messages. The deadline is ctx's (without one the
// gateway applies its own default, 10 s unless configured otherwise). A request without an
// idempotency key gets a new one; req itself is not modified.
//
// Every error is an *Error (use errors.As), carrying the key, the gRPC code and the decoded
// details; its NextStep says what to do with the key.
func (c *Client) Create(ctx context.Context, req *v1.CreateSubscriptionRequest,
	opts ...grpc.CallOption) (*Result, error) {
	if req == nil {
		req = &v1.CreateSubscriptionRequest{}
	}
	key := req.GetIdempotencyKey()
	if key == "" {
		var err error
		if key, err = NewIdempotencyKey(); err != nil {
			return nil, err
		}
		req = proto.Clone(req).(*v1.CreateSubscriptionRequest)
		req.IdempotencyKey = key
	}
	var header, trailer metadata.MD
	opts = append([]grpc.CallOption{grpc.Header(&header), grpc.Trailer(&trailer)}, opts...)
	subscription, err := c.stub.Create(ctx, req, opts...)
	requestID := first(header, "x-request-id")
	if err != nil {
		return nil, decodeError(err, key, requestID, OperationCreate)
	}
	return &Result{
		Subscription:   subscription,
		IdempotencyKey: key,
		Replayed:       first(trailer, "idempotent-replay") == "true",
		RequestID:      requestID,
	}, nil
}

// DeleteResult is a successful Delete: the subscription is gone.
type DeleteResult struct {
	// RequestID is the gateway's id for this call (x-request-id), as in its audit log.
	RequestID string
}

// Delete deletes a subscription (req.Sid, as Create returned it). It succeeds also when an
// earlier attempt of this call deleted it and its answer was lost. Every error is an *Error;
// NOT_FOUND means there is no such subscription, call or account. Retrying a Delete is always
// safe, so it has no idempotency key.
func (c *Client) Delete(ctx context.Context, req *v1.DeleteSubscriptionRequest,
	opts ...grpc.CallOption) (*DeleteResult, error) {
	if req == nil {
		req = &v1.DeleteSubscriptionRequest{}
	}
	var header metadata.MD
	opts = append([]grpc.CallOption{grpc.Header(&header)}, opts...)
	_, err := c.stub.Delete(ctx, req, opts...)
	requestID := first(header, "x-request-id")
	if err != nil {
		return nil, decodeError(err, "", requestID, OperationDelete)
	}
	return &DeleteResult{RequestID: requestID}, nil
}

// SendResult is a successful Send.
type SendResult struct {
	Message *v1.Message
	// IdempotencyKey is the key this call used: the request's, or the one Send generated.
	IdempotencyKey string
	// Replayed is true when the gateway answered with the stored outcome of an earlier call with
	// the same key: no second message was sent.
	Replayed  bool
	RequestID string
}

// Send sends req.Content (one JSON document as text, at most 4096 bytes) to the Voice SDK on the
// call. A request without an idempotency key gets a new one; req itself is not modified. One key
// sends the message at most once. Every error is an *Error; its MessageMayExist says whether the
// message may have been sent.
func (c *Client) Send(ctx context.Context, req *v1.SendMessageRequest,
	opts ...grpc.CallOption) (*SendResult, error) {
	if req == nil {
		req = &v1.SendMessageRequest{}
	}
	key := req.GetIdempotencyKey()
	if key == "" {
		var err error
		if key, err = NewIdempotencyKey(); err != nil {
			return nil, err
		}
		req = proto.Clone(req).(*v1.SendMessageRequest)
		req.IdempotencyKey = key
	}
	var header, trailer metadata.MD
	opts = append([]grpc.CallOption{grpc.Header(&header), grpc.Trailer(&trailer)}, opts...)
	message, err := c.messages.Send(ctx, req, opts...)
	requestID := first(header, "x-request-id")
	if err != nil {
		return nil, decodeError(err, key, requestID, OperationSend)
	}
	return &SendResult{
		Message:        message,
		IdempotencyKey: key,
		Replayed:       first(trailer, "idempotent-replay") == "true",
		RequestID:      requestID,
	}, nil
}

func first(md metadata.MD, name string) string {
	if values := md.Get(name); len(values) > 0 {
		return values[0]
	}
	return ""
}

func (o Options) dialOptions() ([]grpc.DialOption, error) {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("gateway: CertFile and KeyFile go together")
	}
	if o.CAFile == "" {
		if o.CertFile != "" {
			return nil, errors.New("gateway: a client certificate (CertFile) needs TLS: set CAFile")
		}
		if o.BearerToken != "" {
			return nil, errors.New("gateway: a bearer token is never sent in the clear: set CAFile for TLS")
		}
		// grpc.WithInsecure is what gRPC 1.33 has (credentials/insecure came in 1.34).
		return []grpc.DialOption{grpc.WithInsecure()}, nil
	}
	config, err := tlsConfig(o.CAFile, o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	out := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(config))}
	if o.BearerToken != "" {
		out = append(out, grpc.WithPerRPCCredentials(BearerToken(o.BearerToken)))
	}
	return out, nil
}

// tlsConfig reads the files. An empty or unreadable CA file is an error naming it, never a quiet
// fall-back to the system's roots.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("gateway: CA file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("gateway: CA file %s holds no PEM certificate", caFile)
	}
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: client certificate %s / key %s: %w", certFile, keyFile, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// BearerToken is a per-RPC credential sending "authorization: Bearer <token>". It requires
// transport security: grpc-go refuses to dial with it over plaintext.
func BearerToken(token string) credentials.PerRPCCredentials {
	return bearerToken(token)
}

type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }
