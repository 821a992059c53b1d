package server_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/internal/chattest"
	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

// The tests here run two instances on one PostgreSQL database, as behind
// a load balancer, and skip without RATCHETKIT_POSTGRES_DSN.

// twoInstances starts two servers with cfg on one fresh PostgreSQL schema.
func twoInstances(t *testing.T, cfg server.Config) (a, b *testServer) {
	t.Helper()
	dsn := chattest.PostgresDB(t)
	shared := backend{"postgres", func(*testing.T) string { return dsn }}
	return newServer(t, shared, cfg), newServer(t, shared, cfg)
}

// Concurrent fetches of one user's bundle, spread over two instances,
// never get the same one-time prekey, and once the stock is gone every
// further fetch gets a bundle without one.
func TestPreKeysAcrossInstances(t *testing.T) {
	const n = 60
	cfg := server.Config{BundleBurst: 4 * n, PreKeyBurst: 4 * n, MaxConnsPerUser: 4 * n}
	a, b := twoInstances(t, cfg)
	a.register(t, "bob", n)
	alice := b.register(t, "alice", 0)

	fetchEachOnce(t, []*testServer{a, b}, alice.token, "bob", n, 10)
}

// An envelope sent on one instance reaches its recipient on the other at
// once, through NOTIFY (the re-read is set far beyond the test's wait);
// unacknowledged, it comes again with the same sequence number on the
// next connection, on either instance.
func TestDeliveryAcrossInstances(t *testing.T) {
	a, b := twoInstances(t, server.Config{RereadInterval: time.Hour})
	alice := a.register(t, "alice", 0)
	bob := b.register(t, "bob", 0)
	wb := b.dial(t, bob.token)
	wb.readType(api.FramePreKeys)
	wa := a.dial(t, alice.token)
	wa.send(api.Frame{Type: api.FrameSend, ID: "1", To: "bob", Body: []byte("across")})
	sent := wa.readType(api.FrameSent)
	start := time.Now()
	f := wb.readType(api.FrameMessage)
	if string(f.Body) != "across" || f.From != "alice" || f.Seq != sent.Seq {
		t.Fatalf("got %+v, want the envelope with seq %d", f, sent.Seq)
	}
	t.Logf("delivered across instances %v after the sender's ack", time.Since(start))
	wb.c.Close(websocket.StatusNormalClosure, "")

	again := a.dial(t, bob.token)
	if g := again.readType(api.FrameMessage); g.Seq != f.Seq || string(g.Body) != "across" {
		t.Fatalf("redelivery %+v, want seq %d again", g, f.Seq)
	}
	again.send(api.Frame{Type: api.FrameAck, Seq: f.Seq})
	waitFor(t, func() bool { return a.queued(t, "bob") == 0 })
}

// An envelope whose notification never came (here: inserted behind the
// servers' backs, with no NOTIFY at all) still arrives, at the next
// periodic re-read of the queue.
func TestMissedNotificationReread(t *testing.T) {
	a, _ := twoInstances(t, server.Config{RereadInterval: 200 * time.Millisecond})
	a.register(t, "alice", 0)
	bob := a.register(t, "bob", 0)
	wb := a.dial(t, bob.token)
	wb.readType(api.FramePreKeys)
	db := chattest.OpenDB(t, a.dbPath)
	if _, err := db.Exec(`INSERT INTO queue (recipient, sender, body, created) VALUES ('bob', 'alice', 'unannounced', 0)`); err != nil {
		t.Fatal(err)
	}
	if f := wb.readType(api.FrameMessage); string(f.Body) != "unannounced" {
		t.Fatalf("got %+v", f)
	}
}

// A user's newer connection on one instance closes the older one on the
// other, as it would on one instance.
func TestNewestConnectionWinsAcrossInstances(t *testing.T) {
	a, b := twoInstances(t, server.Config{})
	bob := a.register(t, "bob", 0)
	old := a.dial(t, bob.token)
	old.readType(api.FramePreKeys)
	b.dial(t, bob.token)
	for {
		_, err := old.readErr(10 * time.Second)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("old connection ended with %v", err)
			}
			return
		}
	}
}

// Registrations from one address are counted for the cluster, not per
// instance: spread over two instances they meet the one limit.
func TestRegisterRateAcrossInstances(t *testing.T) {
	a, b := twoInstances(t, server.Config{RegisterBurst: 4, RegisterRate: 0.001})
	var codes []int
	for i := range 6 {
		ik, spk, _ := newKeys(t, 1, 0)
		status, _, _ := []*testServer{a, b}[i%2].do(t, "POST", "/v1/register", "", api.RegisterRequest{
			Name: fmt.Sprintf("user%d", i), IdentityKey: ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(spk)})
		codes = append(codes, status)
	}
	if want := []int{201, 201, 201, 201, 429, 429}; !slices.Equal(codes, want) {
		t.Fatalf("registrations from one address over two instances: %v, want %v", codes, want)
	}
}

// The send rate, the bundle rate and the total queue budget hold for the
// cluster: a client that spreads its requests over two instances gets
// what it would get from one.
func TestLimitsAcrossInstances(t *testing.T) {
	const size = 1000
	a, b := twoInstances(t, server.Config{SendBurst: 6, SendRate: 0.001, BundleBurst: 3, BundleRate: 0.001,
		MaxTotalQueueBytes: 6 + 2*size})
	bob := a.register(t, "bob", 10)
	dave := a.register(t, "dave", 0)
	alice := b.register(t, "alice", 0)
	_ = bob

	// Sends: 6 in all, three through each instance (one connection at a
	// time: a user's connection to one instance closes the one to the
	// other); the seventh is refused.
	for i, ts := range []*testServer{a, b} {
		w := ts.dial(t, dave.token)
		stored, refused := sendAll(w, "bob", 3+i, 1)
		if stored != 3 || (i == 1 && (refused == nil || refused.Code != api.CodeRateLimited)) {
			t.Fatalf("instance %d: %d sends stored, then %+v; want 3, then a refusal on the second", i, stored, refused)
		}
		w.c.Close(websocket.StatusNormalClosure, "")
	}

	// The total: two envelopes of size fit beside dave's six bytes, one
	// through each instance; the third does not.
	for i, ts := range []*testServer{a, b} {
		w := ts.dial(t, alice.token)
		stored, refused := sendAll(w, "bob", 1+i, size)
		if stored != 1 || (i == 1 && (refused == nil || refused.Code != api.CodeServerFull)) {
			t.Fatalf("instance %d: %d envelopes stored, then %+v; want 1, then a refusal on the second", i, stored, refused)
		}
		w.c.Close(websocket.StatusNormalClosure, "")
	}

	// Bundles: 3 fetches per fetcher in all.
	var codes []int
	for i := range 5 {
		status, _, _ := []*testServer{a, b}[i%2].do(t, "GET", "/v1/users/bob/bundle", alice.token, nil)
		codes = append(codes, status)
	}
	if want := []int{200, 200, 200, 429, 429}; !slices.Equal(codes, want) {
		t.Fatalf("bundle fetches over two instances: %v, want %v", codes, want)
	}
}

// Instances that start at once on an empty database take turns at the
// migrations: every one opens, and the schema is made once.
func TestInstancesStartTogether(t *testing.T) {
	dsn := chattest.PostgresDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			srv, err := server.New(server.Config{DBPath: dsn, Logger: quietLogger()})
			if err == nil {
				err = srv.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := chattest.OpenDB(t, dsn).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("schema_migrations: %d rows, %v; want 2", n, err)
	}
}

// The shared rate limits keep a row per key only while the key's
// allowance is not full again: every thousandth request sweeps the others
// out, so a stream of new keys (addresses, here) does not grow the table
// without bound.
func TestRateLimitRowsSwept(t *testing.T) {
	dsn := chattest.PostgresDB(t)
	d := newDirect(t, backend{"postgres", func(*testing.T) string { return dsn }}, server.Config{RegisterRate: 1000, RegisterBurst: 1})
	for i := range 1000 {
		d.do(fmt.Sprintf("198.51.%d.%d:1", i/250, i%250+1), "POST", "/v1/register", "", nil)
		if i == 998 {
			time.Sleep(10 * time.Millisecond) // every allowance is full again
		}
	}
	var n int
	if err := chattest.OpenDB(t, dsn).QueryRow(`SELECT count(*) FROM rate_limits`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 1 {
		t.Fatalf("%d rate limit rows after the sweep, want at most the sweeper's own", n)
	}
}
