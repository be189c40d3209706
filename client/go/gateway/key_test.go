package gateway_test

import (
	"regexp"
	"testing"

	"example.com/twilio-gateway/client/go/gateway"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIdempotencyKeyIsARandomUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		key, err := gateway.NewIdempotencyKey()
		if err != nil {
			t.Fatal(err)
		}
		if !uuidV4.MatchString(key) {
			t.Fatalf("key %q is not a lower-case UUID v4", key)
		}
		if seen[key] {
			t.Fatalf("key %q twice", key)
		}
		seen[key] = true
	}
}
