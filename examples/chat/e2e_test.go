package chat_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/client"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"

	_ "modernc.org/sqlite"
)

// The end-to-end test runs the server on loopback and drives clients
// through the client package, as the terminal client does. It checks what
// the users see (every message exactly once, in order per sender) and what
// the server keeps (no plaintext in its database or its logs).

const timeout = 30 * time.Second

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// world is the server and the users of one test.
type world struct {
	t      *testing.T
	url    string
	dbPath string
	logs   *logBuffer
	srv    *server.Server
	users  map[string]*user
	// sent lists the plaintexts of each conversation direction in the
	// order they were sent: sent["alice→bob"].
	mu   sync.Mutex
	sent map[string][]string
}

// emptyWorld is a world with no server yet and no users.
func emptyWorld(t *testing.T) *world {
	return &world{
		t:      t,
		dbPath: filepath.Join(t.TempDir(), "server.db"),
		logs:   &logBuffer{},
		users:  map[string]*user{},
		sent:   map[string][]string{},
	}
}

// debugLogger logs everything into w's buffer.
func (w *world) debugLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := emptyWorld(t)
	srv, err := server.New(server.Config{
		DBPath:      w.dbPath,
		Logger:      w.debugLogger(),
		BundleBurst: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	w.srv, w.url = srv, hs.URL
	t.Cleanup(func() {
		for _, u := range w.users {
			if u.c != nil {
				u.c.Close()
			}
		}
		hs.Close()
		srv.Close()
	})
	return w
}

// user is one person, across restarts of their client.
type user struct {
	w      *world
	name   string
	dir    string
	batch  int // one-time prekeys kept on the server
	c      *client.Client
	mu     sync.Mutex
	got    map[string][]string // plaintexts received, by sender
	events []client.Event
	signal chan struct{}
}

func (w *world) newUser(name string, batch int) *user {
	u := &user{w: w, name: name, dir: filepath.Join(w.t.TempDir(), name), batch: batch,
		got: map[string][]string{}, signal: make(chan struct{}, 1)}
	w.users[name] = u
	u.open()
	return u
}

func (u *user) onEvent(ev client.Event) {
	u.mu.Lock()
	u.events = append(u.events, ev)
	if ev.Kind == client.EventMessage {
		u.got[ev.Peer] = append(u.got[ev.Peer], ev.Text)
	}
	u.mu.Unlock()
	select {
	case u.signal <- struct{}{}:
	default:
	}
}

// open starts the user's client (registering on first use) and connects.
func (u *user) open() {
	u.w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := client.Open(ctx, client.Config{
		Dir: u.dir, Server: u.w.url, Name: u.name, OnEvent: u.onEvent,
		PreKeyBatch: u.batch, MinPreKeys: u.batch,
	})
	if err != nil {
		u.w.t.Fatalf("%s: open: %v", u.name, err)
	}
	u.c = c
	if err := c.Connect(ctx); err != nil {
		u.w.t.Fatalf("%s: connect: %v", u.name, err)
	}
}

// restart closes the client, as when the program exits, and opens it
// again from its directory.
func (u *user) restart() {
	u.w.t.Helper()
	if err := u.c.Close(); err != nil {
		u.w.t.Fatalf("%s: close: %v", u.name, err)
	}
	u.open()
}

// send sends text to peer and records it as sent.
func (u *user) send(peer, text string) {
	u.w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Record first: a fast recipient may report it before Send returns.
	u.w.mu.Lock()
	u.w.sent[u.name+"→"+peer] = append(u.w.sent[u.name+"→"+peer], text)
	u.w.mu.Unlock()
	if err := u.c.Send(ctx, peer, text); err != nil {
		u.w.t.Fatalf("%s → %s: %v", u.name, peer, err)
	}
}

// waitFor waits until cond holds on the user's state (under its lock).
func (u *user) waitFor(what string, cond func() bool) {
	u.w.t.Helper()
	waitUntil(&u.mu, u.signal, cond, func() {
		u.w.t.Fatalf("%s: timed out waiting for %s; received %q; events %+v", u.name, what, u.got, u.events)
	})
}

// waitUntil checks cond under mu each time signal fires, and at least
// every 50 ms; after timeout it calls fail, under mu too.
func waitUntil(mu *sync.Mutex, signal <-chan struct{}, cond func() bool, fail func()) {
	deadline := time.After(timeout)
	for {
		mu.Lock()
		ok := cond()
		mu.Unlock()
		if ok {
			return
		}
		select {
		case <-signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			fail()
			return
		}
	}
}

// waitMessages waits until the user has received everything from sends
// so far from peer, then checks it is exactly what was sent, in order.
func (u *user) waitMessages(peer string) {
	u.w.t.Helper()
	u.w.mu.Lock()
	want := slices.Clone(u.w.sent[peer+"→"+u.name])
	u.w.mu.Unlock()
	u.waitFor(fmt.Sprintf("%d messages from %s", len(want), peer), func() bool { return len(u.got[peer]) >= len(want) })
	u.mu.Lock()
	defer u.mu.Unlock()
	if !slices.Equal(u.got[peer], want) {
		u.w.t.Fatalf("%s got from %s:\n%q\nwant:\n%q", u.name, peer, u.got[peer], want)
	}
}

func (u *user) countEvents(kind client.EventKind) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, e := range u.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (u *user) lastEvent(kind client.EventKind) client.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := len(u.events) - 1; i >= 0; i-- {
		if u.events[i].Kind == kind {
			return u.events[i]
		}
	}
	u.w.t.Fatalf("%s: no event of kind %d", u.name, kind)
	return client.Event{}
}

func (u *user) safety(peer string) string {
	u.w.t.Helper()
	n, err := u.c.SafetyNumber(context.Background(), peer)
	if err != nil {
		u.w.t.Fatalf("%s: safety number with %s: %v", u.name, peer, err)
	}
	return n
}

// queued counts the envelopes the server holds for recipient.
func (w *world) queued(recipient string) int {
	w.t.Helper()
	db, err := sql.Open("sqlite", "file:"+w.dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM queue WHERE recipient = ?`, recipient).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// msg makes a plaintext that cannot occur by accident in any file.
func msg(from, to string, i int) string {
	return fmt.Sprintf("secret note %d from %s to %s: the owl flies at %d", i, from, to, time.Now().UnixNano())
}

func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	// Bob keeps a single one-time prekey on the server, so that it runs
	// out and must be topped up.
	alice := w.newUser("alice", 5)
	bob := w.newUser("bob", 1)

	// Two clients online: Alice starts the session from Bob's bundle,
	// taking his only one-time prekey; the server tells Bob, who uploads
	// a new one.
	for i := range 3 {
		alice.send("bob", msg("alice", "bob", i))
	}
	bob.waitMessages("alice")
	for i := range 2 {
		bob.send("alice", msg("bob", "alice", i))
		alice.send("bob", msg("alice", "bob", 10+i))
	}
	alice.waitMessages("bob")
	bob.waitMessages("alice")
	if ev := alice.lastEvent(client.EventSessionStarted); ev.Peer != "bob" || !ev.OneTimePreKey {
		t.Fatalf("alice's session with bob: %+v, want one with a one-time prekey", ev)
	}
	bob.waitFor("a prekey top-up", func() bool {
		for _, e := range bob.events {
			if e.Kind == client.EventPreKeysUploaded && e.Count == 1 {
				return true
			}
		}
		return false
	})
	if a, b := alice.safety("bob"), bob.safety("alice"); a != b || len(strings.ReplaceAll(a, " ", "")) != 60 {
		t.Fatalf("safety numbers differ or are malformed: %q and %q", a, b)
	}

	// Bob goes offline; Alice's messages wait on the server and arrive,
	// in order, when he is back.
	bob.c.Disconnect()
	for i := range 5 {
		alice.send("bob", msg("alice", "bob", 20+i))
	}
	if n := w.queued("bob"); n != 5 {
		t.Fatalf("%d envelopes queued for offline bob, want 5", n)
	}
	if err := bob.c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	bob.waitMessages("alice")

	// Alice restarts between messages; Bob restarts while a burst of
	// Alice's is arriving. Sessions come back from SQLite.
	alice.restart()
	alice.send("bob", msg("alice", "bob", 30))
	bob.send("alice", msg("bob", "alice", 30))
	bob.waitMessages("alice")
	alice.waitMessages("bob")
	bob.mu.Lock()
	base := len(bob.got["alice"])
	bob.mu.Unlock()
	burst := make(chan struct{})
	go func() {
		defer close(burst)
		for i := range 8 {
			alice.send("bob", msg("alice", "bob", 40+i))
		}
	}()
	bob.waitFor("the burst to start", func() bool { return len(bob.got["alice"]) > base })
	bob.restart()
	<-burst
	bob.waitMessages("alice")

	// Three clients. Bob is offline: Carol takes his last one-time prekey,
	// and Alice, after resetting her identity, finds none left and starts
	// from his signed prekey alone.
	carol := w.newUser("carol", 3)
	bob.c.Disconnect()
	for i := range 3 {
		carol.send("bob", msg("carol", "bob", i))
		carol.send("alice", msg("carol", "alice", i))
	}
	alice.waitMessages("carol")
	alice.send("carol", msg("alice", "carol", 0))
	carol.waitMessages("alice")

	if err := alice.c.ResetIdentity(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		alice.send("bob", msg("alice", "bob", 50+i))
	}
	if ev := alice.lastEvent(client.EventSessionStarted); ev.Peer != "bob" || ev.OneTimePreKey {
		t.Fatalf("alice's new session with bob: %+v, want one without a one-time prekey", ev)
	}
	if n := w.queued("bob"); n != 6 {
		t.Fatalf("%d envelopes queued for offline bob, want 6", n)
	}

	// Bob comes back: Carol's messages arrive, Alice's are held behind a
	// loud identity-change warning until he approves her new key.
	if err := bob.c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	bob.waitMessages("carol")
	bob.waitFor("an identity change warning", func() bool {
		for _, e := range bob.events {
			if e.Kind == client.EventIdentityChanged && e.Peer == "alice" {
				return true
			}
		}
		return false
	})
	bob.mu.Lock()
	before := len(bob.got["alice"])
	bob.mu.Unlock()
	if want := len(w.sent["alice→bob"]) - 3; before != want {
		t.Fatalf("bob shows %d messages from alice before approving her new key, want %d", before, want)
	}
	warning := bob.lastEvent(client.EventIdentityChanged)
	// Alice's new safety number, as she would read it to Bob, matches the
	// one in his warning.
	if alice.safety("bob") != warning.Safety {
		t.Fatalf("safety numbers after the reset differ: alice %q, bob's warning %q", alice.safety("bob"), warning.Safety)
	}
	if err := bob.c.ApproveIdentity(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessages("alice")
	// Bob's one-time prekeys were topped up when he reconnected.
	bob.waitFor("a second top-up", func() bool {
		n := 0
		for _, e := range bob.events {
			if e.Kind == client.EventPreKeysUploaded {
				n++
			}
		}
		return n >= 2
	})
	if n, err := bob.c.PreKeyCount(context.Background()); err != nil || n != 1 {
		t.Fatalf("bob's prekeys on the server: %d, %v; want 1", n, err)
	}

	// Carol hears of Alice's new key with Alice's next message, and
	// approves it once the safety numbers match.
	alice.send("carol", msg("alice", "carol", 1))
	carol.waitFor("alice's identity change", func() bool {
		for _, e := range carol.events {
			if e.Kind == client.EventIdentityChanged && e.Peer == "alice" {
				return true
			}
		}
		return false
	})
	if carol.lastEvent(client.EventIdentityChanged).Safety != alice.safety("carol") {
		t.Fatal("carol's warning shows another safety number than alice's")
	}
	if err := carol.c.ApproveIdentity(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	carol.waitMessages("alice")

	// Everyone talks to everyone, online.
	for round := range 2 {
		for _, from := range []*user{alice, bob, carol} {
			for _, to := range []string{"alice", "bob", "carol"} {
				if to != from.name {
					from.send(to, msg(from.name, to, 100+round))
				}
			}
		}
	}
	for _, u := range []*user{alice, bob, carol} {
		for _, peer := range []string{"alice", "bob", "carol"} {
			if peer != u.name {
				u.waitMessages(peer)
			}
		}
		if n := u.countEvents(client.EventUndecryptable); n != 0 {
			t.Errorf("%s: %d undecryptable envelopes", u.name, n)
		}
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		w.users[name].waitFor("an empty queue", func() bool { return w.queued(name) == 0 })
	}

	// The server never had a plaintext: not in its database files (the
	// WAL included) nor in its logs, in any encoding.
	for _, u := range w.users {
		u.c.Close()
		u.c = nil
	}
	w.srv.Close()
	// Nothing arrived late, twice, while the clients shut down.
	for _, u := range w.users {
		for dir, want := range w.sent {
			from, to, _ := strings.Cut(dir, "→")
			if to == u.name && !slices.Equal(u.got[from], want) {
				t.Errorf("%s finally has from %s:\n%q\nwant:\n%q", u.name, from, u.got[from], want)
			}
		}
	}
	var files [][]byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(w.dbPath + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	logs := w.logs.Bytes()
	if !bytes.Contains(logs, []byte(`"msg":"queued"`)) {
		t.Fatal("the server's debug log has no relay events: is it captured?")
	}
	files = append(files, logs)
	total := 0
	for dir, texts := range w.sent {
		for _, text := range texts {
			total++
			for _, enc := range []string{text, base64.StdEncoding.EncodeToString([]byte(text)), fmt.Sprintf("%x", text)} {
				for i, f := range files {
					if bytes.Contains(f, []byte(enc)) {
						t.Errorf("server file %d contains a plaintext of %s", i, dir)
					}
				}
			}
		}
	}
	t.Logf("%d messages checked across %d conversation directions", total, len(w.sent))
}
