package server_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// serveLoopback runs srv.Serve on 127.0.0.1 until the test ends and
// returns its address.
func serveLoopback(t *testing.T, be backend, cfg server.Config) (*server.Server, string) {
	t.Helper()
	srv := quietServer(t, be, cfg)
	return srv, chattest.Serve(t, srv)
}

// Clients that send a body, or a WebSocket frame, one byte at a time are
// cut off after ReadTimeout; an address gets MaxConnsPerIP connections
// and no more, an account MaxConnsPerUser requests in progress. Once the
// slow clients are gone, others are served as before.
func TestSlowClientsBounded(t *testing.T) { eachBackend(t, testSlowClientsBounded) }

func testSlowClientsBounded(t *testing.T, be backend) {
	const readTimeout = 500 * time.Millisecond
	_, addr := serveLoopback(t, be, server.Config{ReadTimeout: readTimeout, MaxConnsPerIP: 8, MaxConnsPerUser: 3})
	base := "http://" + addr
	stop := make(chan struct{})
	defer close(stop)

	// Twelve slow bodies from one address: four are refused at once, the
	// other eight end with the read timeout.
	body := "POST /v1/register HTTP/1.1\r\nHost: chat\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"
	var slow []<-chan time.Duration
	for range 12 {
		slow = append(slow, chattest.Trickle(t, addr, body, stop))
	}
	lives := chattest.Lifetimes(slow, readTimeout+1500*time.Millisecond)
	if len(lives) != len(slow) {
		t.Fatalf("%d of %d slow-body connections still open %v after they began", len(slow)-len(lives), len(slow), readTimeout+1500*time.Millisecond)
	}
	if lives[3] > readTimeout/2 || lives[4] < readTimeout*9/10 {
		t.Fatalf("slow-body connections lived %v; want 4 refused at once and 8 cut at %v", lives, readTimeout)
	}
	t.Logf("12 slow bodies from one address: 4 refused within %v, 8 closed after %v to %v",
		lives[3].Round(time.Microsecond), lives[4].Round(10*time.Millisecond), lives[11].Round(10*time.Millisecond))

	// A normal client is served again.
	alice := registerHTTP(t, base, "alice")

	// An account's slow requests in progress are capped; the fourth is
	// refused at once with a message naming the limit.
	var held []<-chan time.Duration
	for range 3 {
		held = append(held, chattest.Trickle(t, addr, "PUT /v1/keys HTTP/1.1\r\nHost: chat\r\nAuthorization: Bearer "+alice+"\r\nContent-Length: 10000\r\n\r\n{", stop))
	}
	time.Sleep(100 * time.Millisecond) // let the three reach the handler
	req, _ := http.NewRequest("GET", base+"/v1/keys/count", nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(msg), "3 requests") {
		t.Fatalf("fourth request of an account with three in progress: %d %s", resp.StatusCode, msg)
	}
	if lives := chattest.Lifetimes(held, readTimeout+1500*time.Millisecond); len(lives) != len(held) {
		t.Fatalf("%d slow authenticated requests still open", len(held)-len(lives))
	}

	// A WebSocket frame that trickles in ends its connection.
	ws := chattest.Trickle(t, addr, chattest.WebSocketUpgrade(alice), stop)
	lives = chattest.Lifetimes([]<-chan time.Duration{ws}, readTimeout+1500*time.Millisecond)
	if len(lives) != 1 {
		t.Fatal("a WebSocket frame trickling in kept its connection open")
	}
	t.Logf("slow WebSocket frame: connection closed after %v", lives[0].Round(10*time.Millisecond))
	if c := registerHTTP(t, base, "bob"); c == "" {
		t.Fatal("no token")
	}
}

// registerHTTP registers name over a real connection and returns its token.
func registerHTTP(t *testing.T, base, name string) string {
	t.Helper()
	ik, spk, _ := newKeys(t, 0, 0)
	b := fmt.Sprintf(`{"name":%q,"identity_key":%q,"signed_prekey":{"id":1,"key":%q,"signature":%q}}`, name,
		b64(ik.PublicKey().Encode()), b64(spk.PublicKey().Encode()), b64(spk.Signature()))
	resp, err := http.Post(base+"/v1/register", "application/json", strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register %s: %d %s", name, resp.StatusCode, out)
	}
	_, tok, _ := strings.Cut(string(out), `"token":"`)
	tok, _, _ = strings.Cut(tok, `"`)
	return tok
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
