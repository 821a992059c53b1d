package client

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

type testServer struct {
	url    string
	dbPath string
}

func newServer(t testing.TB) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.db")
	srv, err := server.New(server.Config{DBPath: path, Logger: slog.New(slog.DiscardHandler), BundleBurst: 100})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &testServer{url: hs.URL, dbPath: path}
}

func (ts *testServer) queued(t *testing.T, recipient string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+ts.dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM queue WHERE recipient = ?`, recipient).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// recorder collects a client's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) on(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) texts(from string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind == EventMessage && e.Peer == from {
			out = append(out, e.Text)
		}
	}
	return out
}

func (r *recorder) count(kind EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (ts *testServer) open(t testing.TB, dir, name string, rec *recorder) *Client {
	t.Helper()
	return ts.openWith(t, dir, name, rec, func(*Config) {})
}

// openWith is open with edit applied to the client's Config.
func (ts *testServer) openWith(t testing.TB, dir, name string, rec *recorder, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{Dir: dir, Server: ts.url, Name: name, OnEvent: rec.on}
	edit(&cfg)
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// An envelope delivered again after its ack was lost, or relayed twice
// after the sender's confirmation was lost, is reported once, also after a
// restart, even when the ratchet has moved to a newer chain and could no
// longer tell a repeat from a forgery.
func TestRepeatedEnvelopesReportedOnce(t *testing.T) {
	ts := newServer(t)
	var ra, rb recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bobDir := t.TempDir()
	bob := ts.open(t, bobDir, "bob", &rb)

	// Neither connects: the test carries envelopes from Alice's outbox to
	// Bob's receive, choosing the sequence numbers the relay would.
	envelope := func(text string) []byte {
		t.Helper()
		if err := alice.Queue(ctx(t), "bob", text); err != nil {
			t.Fatal(err)
		}
		out, err := listOutbox(ctx(t), alice.chat)
		if err != nil || len(out) == 0 {
			t.Fatalf("outbox: %d, %v", len(out), err)
		}
		return out[len(out)-1].body
	}
	receive := func(c *Client, seq int64, from string, body []byte) {
		t.Helper()
		if err := c.receive(ctx(t), seq, from, body); err != nil {
			t.Fatal(err)
		}
	}

	one := envelope("one")
	receive(bob, 10, "alice", one)
	// Bob answers, so Alice's next message starts a new ratchet chain.
	reply, err := bob.mgr.Encrypt(ctx(t), addr("alice"), []byte("reply"))
	if err != nil {
		t.Fatal(err)
	}
	receive(alice, 1, "bob", reply)
	two := envelope("two")
	receive(bob, 11, "alice", two)

	receive(bob, 10, "alice", one) // ack of 10 lost: an old chain's message
	receive(bob, 12, "alice", two) // relayed twice by the sender
	bob.Close()
	bob = ts.open(t, bobDir, "bob", &rb)
	for seq, body := range map[int64][]byte{10: one, 11: two, 12: two} {
		receive(bob, seq, "alice", body)
	}
	if got := rb.texts("alice"); strings.Join(got, ",") != "one,two" {
		t.Fatalf("bob got %q, want one and two once each", got)
	}
	if n := rb.count(EventUndecryptable); n != 0 {
		t.Fatalf("%d repeats reported as undecryptable", n)
	}
}

// Messages sent while offline wait in the outbox, survive a restart, and
// go out on the next connection.
func TestOutboxSurvivesRestart(t *testing.T) {
	ts := newServer(t)
	var ra, rb recorder
	aliceDir := t.TempDir()
	alice := ts.open(t, aliceDir, "alice", &ra)
	bob := ts.open(t, t.TempDir(), "bob", &rb)
	if err := bob.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := alice.Queue(ctx(t), "bob", "queued 1"); err != nil {
		t.Fatal(err)
	}
	// Send waits for the server; when its context ends first, the message
	// stays queued.
	sctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for range 2000 {
			if out, _ := listOutbox(context.Background(), alice.chat); len(out) == 2 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if err := alice.Send(sctx, "bob", "queued 2"); !errors.Is(err, context.Canceled) {
		t.Fatalf("send while disconnected: %v", err)
	}
	if n := ts.queued(t, "bob"); n != 0 {
		t.Fatalf("%d envelopes reached the server without a connection", n)
	}
	alice.Close()
	alice = ts.open(t, aliceDir, "alice", &ra)
	if err := alice.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(ctx(t), "bob", "online"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's messages", func() bool { return len(rb.texts("alice")) == 3 })
	if got := rb.texts("alice"); strings.Join(got, ",") != "queued 1,queued 2,online" {
		t.Fatalf("bob got %q", got)
	}
}

// Garbage from a peer is reported, acknowledged and dropped; the
// conversation goes on.
func TestUndecryptableEnvelope(t *testing.T) {
	ts := newServer(t)
	var ra, rb recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.open(t, t.TempDir(), "bob", &rb)
	for _, c := range []*Client{alice, bob} {
		if err := c.Connect(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Send(ctx(t), "bob", "before"); err != nil {
		t.Fatal(err)
	}
	// Alice's own connection, used raw.
	h := http.Header{}
	h.Set("Authorization", "Bearer "+alice.api.token)
	alice.Disconnect()
	ws, _, err := websocket.Dial(ctx(t), alice.api.wsURL(), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{{0x01}, {0x07, 1, 2, 3}, make([]byte, 200)} {
		if err := writeFrame(ctx(t), ws, &api.Frame{Type: api.FrameSend, ID: "x", To: "bob", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "three undecryptable reports", func() bool { return rb.count(EventUndecryptable) == 3 })
	if err := alice.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(ctx(t), "bob", "after"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the next message", func() bool { return len(rb.texts("alice")) == 2 })
	waitFor(t, "an empty queue", func() bool { return ts.queued(t, "bob") == 0 })
}

// The longest message goes through the relay's limits, as a prekey message
// and as a ratchet message; a longer one is refused before anything is
// encrypted.
func TestMessageSizeLimit(t *testing.T) {
	ts := newServer(t)
	var ra, rb recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.open(t, t.TempDir(), "bob", &rb)
	for _, c := range []*Client{alice, bob} {
		if err := c.Connect(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("x", MaxMessageSize)
	if err := alice.Send(ctx(t), "bob", long); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(ctx(t), "bob", long+"y"); err == nil {
		t.Fatal("over-long message accepted")
	}
	waitFor(t, "the long message", func() bool { return len(rb.texts("alice")) == 1 })
	if err := bob.Send(ctx(t), "alice", long); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the long reply", func() bool { return len(ra.texts("bob")) == 1 })
	if ra.texts("bob")[0] != long || rb.texts("alice")[0] != long {
		t.Fatal("long messages arrived altered")
	}
}

func TestSendErrors(t *testing.T) {
	ts := newServer(t)
	var ra recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	if err := alice.Send(ctx(t), "alice", "hi"); err == nil {
		t.Fatal("send to oneself succeeded")
	}
	if err := alice.Send(ctx(t), "nobody", "hi"); !isCode(err, api.CodeUnknownUser) {
		t.Fatalf("send to an unknown user: %v", err)
	}
	if err := alice.Send(ctx(t), "Bad Name", "hi"); err == nil {
		t.Fatal("send to an invalid name succeeded")
	}
}

// A failed registration leaves nothing behind that a retry would trip on;
// an existing account is not opened under another name or server.
func TestRegistrationWithInvite(t *testing.T) {
	code := "invite-code-for-carol-0001"
	srv, err := server.New(server.Config{DBPath: filepath.Join(t.TempDir(), "server.db"), Logger: slog.New(slog.DiscardHandler), InviteCodes: []string{code}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	if _, err := Open(ctx(t), Config{Dir: t.TempDir(), Server: hs.URL, Name: "carol"}); !isCode(err, api.CodeInvite) {
		t.Fatalf("registration without the invite code: %v", err)
	}
	c, err := Open(ctx(t), Config{Dir: t.TempDir(), Server: hs.URL, Name: "carol", Invite: code})
	if err != nil {
		t.Fatalf("registration with the invite code: %v", err)
	}
	c.Close()
}

func TestRegistration(t *testing.T) {
	ts := newServer(t)
	var r recorder
	ts.open(t, t.TempDir(), "alice", &r)
	dir := t.TempDir()
	if _, err := Open(ctx(t), Config{Dir: dir, Server: ts.url, Name: "alice"}); !isCode(err, api.CodeNameTaken) {
		t.Fatalf("taken name: %v", err)
	}
	if _, err := Open(ctx(t), Config{Dir: dir, Server: ts.url, Name: "Alice!"}); err == nil {
		t.Fatal("invalid name accepted")
	}
	c, err := Open(ctx(t), Config{Dir: dir, Server: ts.url, Name: "alice2"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.PreKeyCount(ctx(t))
	if err != nil || n != 20 {
		t.Fatalf("after a retried registration the server holds %d prekeys (%v), want 20", n, err)
	}
	c.Close()
	if _, err := Open(ctx(t), Config{Dir: dir, Name: "bob"}); err == nil {
		t.Fatal("opened alice2's directory as bob")
	}
	if _, err := Open(ctx(t), Config{Dir: dir, Server: "http://elsewhere.invalid"}); err == nil {
		t.Fatal("opened the account for another server")
	}
	c, err = Open(ctx(t), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "alice2" {
		t.Fatalf("name %q", c.Name())
	}
	c.Close()
}
