package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// queued counts the envelopes stored for recipient, read from the database
// directly.
func (ts *testServer) queued(t *testing.T, recipient string) int {
	t.Helper()
	var n int
	if err := chattest.OpenDB(t, ts.dbPath).QueryRow(`SELECT count(*) FROM queue WHERE recipient = $1`, recipient).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Envelopes reach an online recipient at once, wait in the queue for an
// offline one, arrive in order, and are deleted only when acknowledged: an
// unacknowledged one comes back on the next connection.
func TestRelayOnlineOfflineAndAcks(t *testing.T) { eachBackend(t, testRelayOnlineOfflineAndAcks) }

func testRelayOnlineOfflineAndAcks(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	alice := ts.register(t, "alice", 0)
	bob := ts.register(t, "bob", 0)

	wa := ts.dial(t, alice.token)
	wb := ts.dial(t, bob.token)
	if f := wb.read(); f.Type != api.FramePreKeys || f.Remaining == nil || *f.Remaining != 0 {
		t.Fatalf("first frame %+v, want the prekey count", f)
	}

	wa.send(api.Frame{Type: api.FrameSend, ID: "m1", To: "bob", Body: []byte("envelope-1")})
	sent := wa.readType(api.FrameSent)
	if sent.ID != "m1" || sent.Seq <= 0 {
		t.Fatalf("sent frame %+v", sent)
	}
	got := wb.readType(api.FrameMessage)
	if got.From != "alice" || got.Seq != sent.Seq || string(got.Body) != "envelope-1" {
		t.Fatalf("bob got %+v", got)
	}
	wb.send(api.Frame{Type: api.FrameAck, Seq: got.Seq})

	// Bob goes offline; three envelopes wait in the queue.
	wb.c.Close(websocket.StatusNormalClosure, "")
	for i := 2; i <= 4; i++ {
		wa.send(api.Frame{Type: api.FrameSend, ID: fmt.Sprint(i), To: "bob", Body: fmt.Appendf(nil, "envelope-%d", i)})
		wa.readType(api.FrameSent)
	}
	waitFor(t, func() bool { return ts.queued(t, "bob") == 3 })

	// He comes back, gets them in order, acknowledges two and drops off.
	wb = ts.dial(t, bob.token)
	var seqs []int64
	for i := 2; i <= 4; i++ {
		f := wb.readType(api.FrameMessage)
		if string(f.Body) != fmt.Sprintf("envelope-%d", i) {
			t.Fatalf("got %q, want envelope-%d", f.Body, i)
		}
		seqs = append(seqs, f.Seq)
	}
	wb.send(api.Frame{Type: api.FrameAck, Seq: seqs[0]})
	wb.send(api.Frame{Type: api.FrameAck, Seq: seqs[1]})
	waitFor(t, func() bool { return ts.queued(t, "bob") == 1 })
	wb.c.Close(websocket.StatusNormalClosure, "")

	// The third comes again; an ack of someone else's envelope or a repeated
	// ack changes nothing.
	wb = ts.dial(t, bob.token)
	if f := wb.readType(api.FrameMessage); f.Seq != seqs[2] || string(f.Body) != "envelope-4" {
		t.Fatalf("redelivery: %+v", f)
	}
	wa.send(api.Frame{Type: api.FrameAck, Seq: seqs[2]})
	wb.send(api.Frame{Type: api.FrameAck, Seq: seqs[0]})
	wb.send(api.Frame{Type: api.FrameAck, Seq: seqs[2]})
	waitFor(t, func() bool { return ts.queued(t, "bob") == 0 })
}

// Each bad frame gets an error frame and the connection stays usable; a
// frame over the size limit ends the connection with "message too big",
// and the server keeps serving.
func TestRelayValidation(t *testing.T) { eachBackend(t, testRelayValidation) }

func testRelayValidation(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{MaxQueue: 2, SenderShare: 1})
	alice := ts.register(t, "alice", 0)
	ts.register(t, "bob", 0)
	wa := ts.dial(t, alice.token)

	tests := []struct {
		name  string
		typ   websocket.MessageType
		frame string
		id    string
		code  string
	}{
		{"malformed JSON", websocket.MessageText, `{"type":"send",`, "", api.CodeBadRequest},
		{"not an object", websocket.MessageText, `[1,2]`, "", api.CodeBadRequest},
		{"binary frame", websocket.MessageBinary, `{"type":"send"}`, "", api.CodeBadRequest},
		{"unknown field", websocket.MessageText, `{"type":"send","to":"bob","body":"eA==","x":1}`, "", api.CodeBadRequest},
		{"unknown type", websocket.MessageText, `{"type":"subscribe","id":"u1"}`, "u1", api.CodeBadRequest},
		{"trailing data", websocket.MessageText, `{"type":"ack","seq":1}{}`, "", api.CodeBadRequest},
		{"bad base64", websocket.MessageText, `{"type":"send","to":"bob","body":"!!"}`, "", api.CodeBadRequest},
		{"ack without seq", websocket.MessageText, `{"type":"ack","id":"a1"}`, "a1", api.CodeBadRequest},
		{"unknown recipient", websocket.MessageText, `{"type":"send","id":"s1","to":"mallory","body":"eA=="}`, "s1", api.CodeUnknownUser},
		{"invalid recipient", websocket.MessageText, `{"type":"send","id":"s2","to":"../bob","body":"eA=="}`, "s2", api.CodeUnknownUser},
		{"empty envelope", websocket.MessageText, `{"type":"send","id":"s3","to":"bob"}`, "s3", api.CodeBadRequest},
		{"long id", websocket.MessageText, `{"type":"send","id":"` + strings.Repeat("i", api.MaxIDLen+1) + `","to":"bob","body":"eA=="}`, "", api.CodeBadRequest},
		{"oversize envelope", websocket.MessageText, `{"type":"send","id":"s4","to":"bob","body":"` +
			base64.StdEncoding.EncodeToString(make([]byte, api.MaxEnvelopeSize+1)) + `"}`, "s4", api.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wa.sendRaw(tt.typ, []byte(tt.frame))
			f := wa.readType(api.FrameError)
			if f.Code != tt.code || f.ID != tt.id || f.Message == "" {
				t.Fatalf("got %+v, want code %s id %q", f, tt.code, tt.id)
			}
		})
	}
	if n := ts.queued(t, "bob"); n != 0 {
		t.Fatalf("%d envelopes queued by bad frames", n)
	}

	// The connection still relays, up to the queue limit.
	for i := range 2 {
		wa.send(api.Frame{Type: api.FrameSend, ID: fmt.Sprint(i), To: "bob", Body: []byte("x")})
		wa.readType(api.FrameSent)
	}
	wa.send(api.Frame{Type: api.FrameSend, ID: "full", To: "bob", Body: []byte("x")})
	if f := wa.readType(api.FrameError); f.Code != api.CodeQueueFull || f.ID != "full" {
		t.Fatalf("full queue: %+v", f)
	}

	// A frame over the limit closes the connection with status 1009.
	wa.sendRaw(websocket.MessageText, make([]byte, api.MaxFrameSize+1))
	for {
		_, err := wa.readErr(10 * time.Second)
		if err == nil {
			continue
		}
		if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("oversize frame: connection ended with %v, want status 1009", err)
		}
		break
	}
	// A new connection works.
	wa = ts.dial(t, alice.token)
	wa.send(api.Frame{Type: api.FrameAck, Seq: 1})
	wa.send(api.Frame{Type: "nonsense"})
	if f := wa.readType(api.FrameError); f.Code != api.CodeBadRequest {
		t.Fatalf("after reconnect: %+v", f)
	}
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "frame over") })
}

// A second connection for a user replaces the first, which is closed with
// a policy-violation status, and envelopes go to the new one.
func TestRelayNewestConnectionWins(t *testing.T) { eachBackend(t, testRelayNewestConnectionWins) }

func testRelayNewestConnectionWins(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	alice := ts.register(t, "alice", 0)
	bob := ts.register(t, "bob", 0)
	old := ts.dial(t, bob.token)
	old.readType(api.FramePreKeys)
	cur := ts.dial(t, bob.token)
	for {
		_, err := old.readErr(10 * time.Second)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("old connection ended with %v", err)
			}
			break
		}
	}
	wa := ts.dial(t, alice.token)
	wa.send(api.Frame{Type: api.FrameSend, To: "bob", Body: []byte("hi")})
	if f := cur.readType(api.FrameMessage); string(f.Body) != "hi" {
		t.Fatalf("got %+v", f)
	}
}

// An online user hears when fetches bring its one-time prekeys down to the
// low-water mark, so it can upload more.
func TestPreKeyReports(t *testing.T) { eachBackend(t, testPreKeyReports) }

func testPreKeyReports(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{LowPreKeys: 2})
	bob := ts.register(t, "bob", 4)
	alice := ts.register(t, "alice", 0)
	wb := ts.dial(t, bob.token)
	if f := wb.read(); f.Type != api.FramePreKeys || *f.Remaining != 4 {
		t.Fatalf("on connect: %+v", f)
	}
	ts.bundle(t, alice.token, "bob") // 3 left: above the mark, no report
	ts.bundle(t, alice.token, "bob") // 2 left
	if f := wb.read(); f.Type != api.FramePreKeys || *f.Remaining != 2 {
		t.Fatalf("after fetches: %+v", f)
	}
}

// Closing the server tells connected clients it is going away.
func TestCloseEndsConnections(t *testing.T) { eachBackend(t, testCloseEndsConnections) }

func testCloseEndsConnections(t *testing.T, be backend) {
	logs := &syncBuffer{}
	srv, err := server.New(server.Config{DBPath: be.newDB(t), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{logs: logs}
	ts.Server = httptest.NewServer(srv.Handler())
	defer ts.Server.Close()
	alice := ts.register(t, "alice", 0)
	w := ts.dial(t, alice.token)
	w.readType(api.FramePreKeys)
	// The client reads while the server closes, as a real one does: the
	// close handshake needs its answer.
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := w.readErr(10 * time.Second); err != nil {
				errc <- err
				return
			}
		}
	}()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	err = <-errc
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("connection ended with %v, want going away", err)
	}
}

// With a certificate and key, Serve speaks TLS only.
func TestServeTLS(t *testing.T) { eachBackend(t, testServeTLS) }

func testServeTLS(t *testing.T, be backend) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	srv, err := server.New(server.Config{DBPath: be.newDB(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, certFile, keyFile) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/v1/keys/count")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("over TLS: status %d, want 401", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + ln.Addr().String() + "/v1/keys/count"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port: status %d", resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	// A missing certificate is an error, not a silent fallback to HTTP.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if err := srv.Serve(context.Background(), ln2, filepath.Join(dir, "missing.pem"), keyFile); err == nil {
		t.Fatal("Serve with a missing certificate succeeded")
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "chat test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// The log never holds a token, a key or an envelope, in any encoding.
func TestLogsHoldNoSecrets(t *testing.T) { eachBackend(t, testLogsHoldNoSecrets) }

func testLogsHoldNoSecrets(t *testing.T, be backend) {
	ts := newServer(t, be, server.Config{})
	bob := ts.register(t, "bob", 2)
	alice := ts.register(t, "alice", 0)
	b := ts.bundle(t, alice.token, "bob")
	wb := ts.dial(t, bob.token)
	wa := ts.dial(t, alice.token)
	envelope := []byte("an envelope the server must not log")
	wa.send(api.Frame{Type: api.FrameSend, To: "bob", Body: envelope})
	wa.send(api.Frame{Type: api.FrameSend, To: "nobody", Body: envelope})
	f := wb.readType(api.FrameMessage)
	wb.send(api.Frame{Type: api.FrameAck, Seq: f.Seq})
	waitFor(t, func() bool { return ts.queued(t, "bob") == 0 })
	wa.c.Close(websocket.StatusNormalClosure, "")
	wb.c.Close(websocket.StatusNormalClosure, "")
	ts.Server.Close()
	ts.srv.Close()

	logs := ts.logs.String()
	if !strings.Contains(logs, `"msg":"queued"`) || !strings.Contains(logs, `"msg":"pushed"`) {
		t.Fatalf("debug log lacks relay events:\n%s", logs)
	}
	secrets := map[string][]byte{
		"alice's token":   []byte(alice.token),
		"bob's token":     []byte(bob.token),
		"envelope":        envelope,
		"identity key":    bob.ik.PublicKey().Encode(),
		"signed prekey":   bob.spk.PublicKey().Encode(),
		"signature":       bob.spk.Signature(),
		"one-time prekey": b.OneTimePreKey.Key,
	}
	for name, s := range secrets {
		for _, enc := range [][]byte{s, []byte(base64.StdEncoding.EncodeToString(s)), fmt.Appendf(nil, "%x", s)} {
			if bytes.Contains([]byte(logs), enc) {
				t.Errorf("log contains the %s", name)
			}
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A user who connects, drops off and comes back while envelopes pour in
// gets every one of them, in order; what was pushed but not acknowledged
// (or whose ack was lost as the connection dropped) comes again, never
// out of order. Connecting while a sender wakes the connection never
// blocks it.
func TestRelayReconnectsDuringSends(t *testing.T) { eachBackend(t, testRelayReconnectsDuringSends) }

func testRelayReconnectsDuringSends(t *testing.T, be backend) {
	const n = 100
	ts := newServer(t, be, server.Config{})
	alice := ts.register(t, "alice", 0)
	bob := ts.register(t, "bob", 0)
	wa := ts.dial(t, alice.token)
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			b, _ := json.Marshal(api.Frame{Type: api.FrameSend, ID: fmt.Sprint(i), To: "bob", Body: fmt.Appendf(nil, "%04d", i)})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := wa.c.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	next, redelivered := 0, 0
	for round := 0; next < n; round++ {
		wb := ts.dial(t, bob.token)
		// Take up to ten new envelopes, acknowledging each, then drop the
		// connection without a goodbye; from round 5 on, take them all.
		for fresh := 0; next < n && (round >= 5 || fresh < 10); {
			f := wb.readType(api.FrameMessage)
			wb.send(api.Frame{Type: api.FrameAck, Seq: f.Seq})
			var i int
			if _, err := fmt.Sscanf(string(f.Body), "%d", &i); err != nil {
				t.Fatalf("body %q", f.Body)
			}
			switch {
			case i < next:
				redelivered++
			case i == next:
				next++
				fresh++
			default:
				t.Fatalf("round %d: got envelope %d, want %d", round, i, next)
			}
		}
		if next < n {
			wb.c.CloseNow()
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return ts.queued(t, "bob") == 0 })
	t.Logf("%d envelopes, %d delivered again after a reconnect", n, redelivered)
}

// /healthz answers 200 while the server serves and its database answers,
// and 503 once Serve has begun shutting down; WebSocket clients are then
// told to go away.
func TestHealthAndShutdown(t *testing.T) { eachBackend(t, testHealthAndShutdown) }

func testHealthAndShutdown(t *testing.T, be backend) {
	srv := quietServer(t, be, server.Config{})
	addr, stop := chattest.ServeStoppable(t, srv)
	base := "http://" + addr
	ts := &testServer{Server: &httptest.Server{URL: base, Config: &http.Server{}}}
	var h api.Health
	ts.mustDo(t, "GET", "/healthz", "", nil, http.StatusOK, &h)
	if h.Status != "ok" {
		t.Fatalf("healthz: %+v", h)
	}
	bob := ts.register(t, "bob", 0)
	w := ts.dial(t, bob.token)
	w.readType(api.FramePreKeys)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	_, err := w.readErr(10 * time.Second)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("connection ended with %v, want going away", err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	// The listener is closed now; the handler still says it is draining.
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "draining") {
		t.Fatalf("healthz after shutdown: %d %s", rec.Code, rec.Body)
	}
}
