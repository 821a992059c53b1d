package client

import (
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func (r *recorder) of(kind EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// queued returns the envelope alice's Queue just put in her outbox.
func queued(t testing.TB, alice *Client, text string) []byte {
	t.Helper()
	if err := alice.Queue(ctx(t), "bob", text); err != nil {
		t.Fatal(err)
	}
	out, err := listOutbox(ctx(t), alice.chat)
	if err != nil || len(out) == 0 {
		t.Fatalf("outbox: %d, %v", len(out), err)
	}
	if err := deleteOutbox(ctx(t), alice.chat, out[len(out)-1].id); err != nil {
		t.Fatal(err)
	}
	return out[len(out)-1].body
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Envelopes held behind an identity change stop at the count and byte
// bounds: the rest are left unacknowledged on the server, also when they
// come again, and a small envelope after a large one that did not fit is
// left too, so that the sender's order holds.
func TestHeldBounded(t *testing.T) {
	ts := newServer(t)
	var ra, rb recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.openWith(t, t.TempDir(), "bob", &rb, func(c *Config) {
		c.MaxHeld = 5
		c.MaxHeldBytes = 3 << 10
		c.MaxEnvelopeSize = 2 << 10
	})
	seq := heldFrom(t, alice, bob) // one envelope held
	for _, n := range []int{1000, 1000} {
		if err := bob.receive(ctx(t), seq, "alice", random(n)); err != nil {
			t.Fatalf("envelope %d: %v", seq, err)
		}
		seq++
	}
	// Over the byte bound, then one that would fit: both stay out.
	firstLeft := seq
	for _, n := range []int{1500, 10} {
		if err := bob.receive(ctx(t), seq, "alice", random(n)); !errors.Is(err, errLeft) {
			t.Fatalf("envelope %d over the bound: %v, want it left on the server", seq, err)
		}
		seq++
	}
	for range 20 {
		if err := bob.receive(ctx(t), seq, "alice", random(10)); !errors.Is(err, errLeft) {
			t.Fatalf("envelope %d over the bound: %v", seq, err)
		}
		seq++
	}
	// Left envelopes come again on the next connection; they are below
	// lastSeq, which other senders move on.
	if err := bob.receive(ctx(t), seq+100, "carol", random(100)); err != nil {
		t.Fatal(err)
	}
	if err := bob.receive(ctx(t), firstLeft, "alice", random(1500)); !errors.Is(err, errLeft) {
		t.Fatalf("left envelope delivered again: %v, want it left again", err)
	}
	held, err := listHeld(ctx(t), bob.chat, "alice")
	if err != nil {
		t.Fatal(err)
	}
	tot, err := heldFor(ctx(t), bob.chat, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var bytes int64
	for _, h := range held {
		bytes += int64(len(h.body))
	}
	if len(held) != 3 || tot.count != 3 || tot.bytes != bytes || bytes > 3<<10 {
		t.Fatalf("held %d envelopes of %d bytes, totals say %d and %d; want 3 within 3 KiB", len(held), bytes, tot.count, tot.bytes)
	}
	if tot.left != 22 || tot.leftFrom != firstLeft {
		t.Fatalf("left %d from %d, want 22 from %d", tot.left, tot.leftFrom, firstLeft)
	}
	if ev := rb.of(EventHeldFull); len(ev) != 1 || ev[0].Peer != "alice" || ev[0].Count != 3 {
		t.Fatalf("held-full events %+v, want one for alice with 3 held", ev)
	}
}

// After approval, the held envelopes are reported, then the ones left on
// the server once it sends them again, in order and once each, also when
// an ack is lost; later ones follow.
func TestApproveAfterHeldFull(t *testing.T) {
	ts := newServer(t)
	var ra, rb recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.openWith(t, t.TempDir(), "bob", &rb, func(c *Config) { c.MaxHeld = 3 })
	seq := heldFrom(t, alice, bob) // "hi" held at 2
	body := map[int64][]byte{}
	for _, text := range []string{"a", "b", "c", "d", "e", "f"} {
		body[seq] = queued(t, alice, text)
		err := bob.receive(ctx(t), seq, "alice", body[seq])
		if left := seq >= 5; left != errors.Is(err, errLeft) || !left && err != nil {
			t.Fatalf("message %s at %d: %v", text, seq, err)
		}
		seq++
	}
	receive := func(seq int64) {
		t.Helper()
		if err := bob.receive(ctx(t), seq, "alice", body[seq]); err != nil {
			t.Fatalf("%d: %v", seq, err)
		}
	}
	if err := bob.ApproveIdentity(ctx(t), "alice"); err != nil {
		t.Fatal(err)
	}
	if got := rb.texts("alice"); !slices.Equal(got, []string{"hi", "hi", "a", "b"}) {
		t.Fatalf("after approval bob shows %q", got)
	}
	// Until the next connection, the server does not send the left ones
	// again: a later one must wait for them.
	if err := bob.receive(ctx(t), 5, "alice", body[5]); !errors.Is(err, errLeft) {
		t.Fatalf("left envelope before a new connection: %v", err)
	}
	bob.newConnection()
	receive(5)
	receive(6)
	receive(6) // ack lost
	receive(3) // ack of a held one lost
	receive(7)
	receive(8)
	body[9] = queued(t, alice, "g")
	receive(9)
	receive(8)
	if got := rb.texts("alice"); !slices.Equal(got, []string{"hi", "hi", "a", "b", "c", "d", "e", "f", "g"}) {
		t.Fatalf("bob shows %q", got)
	}
	if n := rb.count(EventUndecryptable); n != 0 {
		t.Fatalf("%d undecryptable", n)
	}
	if tot, err := heldFor(ctx(t), bob.chat, "alice"); err != nil || tot != (heldTotal{}) {
		t.Fatalf("alice's totals once all came in: %+v, %v", tot, err)
	}
}

// A chat.db from before the bound gets its totals from the held rows.
func TestHeldUpgrade(t *testing.T) {
	ts := newServer(t)
	var rb recorder
	dir := t.TempDir()
	bob := ts.open(t, dir, "bob", &rb)
	for _, q := range []string{
		// Back to version 0: no totals, no devices, no groups.
		`DROP TABLE held_total`, `DROP INDEX held_sender`, `DROP TABLE groups`, `DROP TABLE sk_shared`,
		`ALTER TABLE account DROP COLUMN device`, `ALTER TABLE outbox DROP COLUMN device`, `ALTER TABLE held DROP COLUMN device`,
		`PRAGMA user_version = 0`,
		`INSERT INTO held (seq, sender, body) VALUES (1, 'alice', x'0102'), (2, 'alice', x'030405'), (3, 'carol', x'06')`,
	} {
		if _, err := bob.chat.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	bob.Close()
	bob = ts.open(t, dir, "bob", &rb)
	for name, want := range map[string]heldTotal{"alice": {count: 2, bytes: 5}, "carol": {count: 1, bytes: 1}} {
		if got, err := heldFor(ctx(t), bob.chat, name); err != nil || got != want {
			t.Fatalf("%s: %+v, %v; want %+v", name, got, err, want)
		}
	}
}

// A peer whose envelopes keep failing to decrypt is throttled: past the
// burst, its envelopes are dropped before any trial decryption until its
// allowance grows back. Other peers are not affected.
func TestFailedDecryptThrottled(t *testing.T) {
	ts := newServer(t)
	var ra, rb, rc recorder
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	carol := ts.open(t, t.TempDir(), "carol", &rc)
	bob := ts.openWith(t, t.TempDir(), "bob", &rb, func(c *Config) {
		c.FailedDecryptBurst = 3
		c.FailedDecryptRate = 1
		c.now = clk.now
	})
	seq := int64(1)
	receive := func(from *Client, body []byte) {
		t.Helper()
		if err := bob.receive(ctx(t), seq, from.Name(), body); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	receive(alice, queued(t, alice, "hello"))
	forged := forgedRatchetMessage(t)
	for i := range 10 {
		receive(alice, forged)
		receive(carol, queued(t, carol, string(rune('a'+i))))
	}
	tried, dropped := rb.count(EventUndecryptable), rb.of(EventDropped)
	if tried != 3 || len(dropped) != 7 || !errors.Is(dropped[6].Err, ErrThrottled) || dropped[6].Count != 7 || dropped[6].Peer != "alice" {
		t.Fatalf("10 forgeries: %d tried, %d dropped (%+v); want 3 and 7", tried, len(dropped), dropped)
	}
	// Throttled, alice's real messages are dropped too; a second later
	// one failure is allowed again.
	receive(alice, queued(t, alice, "lost"))
	clk.advance(time.Second)
	receive(alice, forged)
	receive(alice, forged)
	if tried, n := rb.count(EventUndecryptable), len(rb.of(EventDropped)); tried != 4 || n != 9 {
		t.Fatalf("after a second: %d tried, %d dropped; want 4 and 9", tried, n)
	}
	clk.advance(10 * time.Second)
	receive(alice, queued(t, alice, "back"))
	if got := rb.texts("alice"); !slices.Equal(got, []string{"hello", "back"}) {
		t.Fatalf("alice's messages: %q", got)
	}
	if got := rb.texts("carol"); len(got) != 10 {
		t.Fatalf("carol's messages: %q, want all 10", got)
	}
}

// An envelope over MaxEnvelopeSize is dropped before any decryption.
func TestEnvelopeTooLarge(t *testing.T) {
	ts := newServer(t)
	var ra, rb recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.openWith(t, t.TempDir(), "bob", &rb, func(c *Config) { c.MaxEnvelopeSize = 1000 })
	if err := bob.receive(ctx(t), 1, "alice", queued(t, alice, "hello")); err != nil {
		t.Fatal(err)
	}
	forged := append(forgedRatchetMessage(t), make([]byte, 1000)...)
	if err := bob.receive(ctx(t), 2, "alice", forged); err != nil {
		t.Fatal(err)
	}
	ev := rb.of(EventDropped)
	if rb.count(EventUndecryptable) != 0 || len(ev) != 1 || !errors.Is(ev[0].Err, ErrEnvelopeTooLarge) {
		t.Fatalf("over-long envelope: %d undecryptable, drops %+v; want one drop before decryption", rb.count(EventUndecryptable), ev)
	}
}

// fakeClock is the limiter's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
