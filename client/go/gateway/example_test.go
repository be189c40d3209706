package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"example.com/twilio-gateway/client/go/gateway"
	twiliogatewayv1 "example.com/twilio-gateway/client/go/gen/twilio_gateway/v1"
)

// createSubscription is the README's example (between the markers, word for word: see
// TestReadmeShowsTheTestedExample); TestIntegrationReadmeExample runs it against the gateway.
func createSubscription(w io.Writer, target string) error {
	// README example begins
	client, err := gateway.Dial(target, gateway.Options{}) // TLS: Options{CAFile: "ca.pem", BearerToken: token}
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	result, err := client.Create(ctx, &twiliogatewayv1.CreateSubscriptionRequest{
		CallSid: "CA0123456789abcdef0123456789abcdef", Callback: "https://example.com/twilio/messages"})
	var failure *gateway.Error
	if errors.As(err, &failure) { // the key, the code, the details, and what to do with the key
		return fmt.Errorf("%v: %s", failure, failure.NextStep())
	}
	fmt.Fprintln(w, "created", result.Subscription.Sid)
	// README example ends
	return nil
}

// A Create against a gateway on localhost (compiled by go test, not run: it needs a gateway).
func Example() {
	if err := createSubscription(os.Stdout, "localhost:50051"); err != nil {
		fmt.Println(err)
	}
}

// exampleLines are the lines of file between the markers "README example begins" and "ends",
// without indentation or Markdown code fences.
func exampleLines(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	inside := false
	for scanner := bufio.NewScanner(f); scanner.Scan(); {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case strings.Contains(line, "README example begins"):
			inside = true
		case strings.Contains(line, "README example ends"):
			return lines
		case inside && !strings.HasPrefix(line, "```"):
			lines = append(lines, line)
		}
	}
	t.Fatalf("%s has no complete README example between the markers", file)
	return nil
}

func TestReadmeShowsTheTestedExample(t *testing.T) {
	readme := exampleLines(t, "../README.md")
	tested := exampleLines(t, "example_test.go")
	if strings.Join(readme, "\n") != strings.Join(tested, "\n") {
		t.Errorf("README.md's example differs from example_test.go's:\nREADME:\n%s\n\nexample_test.go:\n%s",
			strings.Join(readme, "\n"), strings.Join(tested, "\n"))
	}
}
