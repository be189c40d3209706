package gateway

import (
	"context"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	v1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// Watch is a MessageService.Watch in progress: the messages Voice SDK clients send on calls, as
// Twilio delivers them to the gateway's webhook (README, "Receiving messages"), in order. Read it
// from one goroutine; Cursor may be read concurrently.
type Watch struct {
	ctx    context.Context // the caller's: its cancellation is the caller ending the Watch
	stream v1.MessageService_WatchClient
	header metadata.MD

	mu     sync.Mutex
	cursor string
}

// Watch starts the stream; it does not end by itself. It ends when ctx is done (cancel ctx to
// stop watching: Recv then returns io.EOF) or with the gateway's error. req: CallSid (only that
// call's), AccountSid (empty: the gateway's account), Cursor (resume after that message) or
// FromOldest (without a cursor: the oldest message kept instead of the next one received).
func (c *Client) Watch(ctx context.Context, req *v1.WatchMessagesRequest,
	opts ...grpc.CallOption) (*Watch, error) {
	if req == nil {
		req = &v1.WatchMessagesRequest{}
	}
	w := &Watch{ctx: ctx, cursor: req.GetCursor()}
	opts = append([]grpc.CallOption{grpc.Header(&w.header)}, opts...)
	stream, err := c.messages.Watch(ctx, req, opts...)
	if err != nil {
		return nil, w.decode(err)
	}
	w.stream = stream
	return w, nil
}

// Recv blocks for the next message. The stream's end is an error: io.EOF when the caller's ctx
// was cancelled (the caller ended it), else an *Error whose ResumeCursor is where to watch again
// (OUT_OF_RANGE, reason CURSOR_EXPIRED: the cursor left the retention; start without it).
func (w *Watch) Recv() (*v1.CallMessage, error) {
	message, err := w.stream.Recv()
	if err != nil {
		// Not the stream's own context, which grpc-go cancels whenever the stream ends.
		if w.ctx.Err() == context.Canceled {
			return nil, io.EOF
		}
		return nil, w.decode(err)
	}
	w.mu.Lock()
	w.cursor = message.GetCursor()
	w.mu.Unlock()
	return message, nil
}

// Cursor is the cursor of the last message Recv returned, else the one the Watch started after.
func (w *Watch) Cursor() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cursor
}

func (w *Watch) decode(err error) *Error {
	out := decodeError(err, "", first(w.header, "x-request-id"), OperationWatch)
	// This stream's own word first: the gateway's `cursor` is the last message it wrote, which a
	// broken connection may have lost on the way. Without one (no message yet, a watch of new
	// ones) the gateway's says where the stream started.
	out.ResumeCursor = w.Cursor()
	if out.ResumeCursor == "" {
		out.ResumeCursor = out.Metadata["cursor"]
	}
	return out
}
