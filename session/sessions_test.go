package session_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestArchive: Alice starts 45 sessions in a row (as a peer that keeps
// losing its state would) and sends one message on each, all delivered
// after the last. Bob keeps the newest 41 (current + 40 archived): the
// messages of those decrypt, the older ones fail with the current
// session's error.
func TestArchive(t *testing.T) {
	srv := newServer()
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	const n = 45
	var firsts, laters [][]byte
	for i := range n {
		connect(t, srv, alice, bob)
		first := alice.encrypt(bob, fmt.Sprint("first ", i))
		bob.decrypt(alice, first, fmt.Sprint("first ", i))
		// Bob answers, so that Alice's later messages are ratchet messages.
		alice.decrypt(bob, bob.encrypt(alice, "ok"), "ok")
		firsts = append(firsts, first)
		laters = append(laters, alice.encrypt(bob, fmt.Sprint("later ", i)))
	}
	assertSessions(t, bob, alice.addr, session.DefaultMaxArchived+1)
	assertSessions(t, alice, bob.addr, session.DefaultMaxArchived+1)
	// Oldest first: each promotes its session to current on the way.
	for i := range n {
		before := take(t, bob.st, alice.addr)
		pt, err := bob.m.Decrypt(t.Context(), alice.addr, laters[i])
		if i < n-session.DefaultMaxArchived-1 {
			if kind(err) != "auth_failed" {
				t.Errorf("message of dropped session %d: %q, %v; want auth_failed", i, pt, err)
			}
			if !before.equal(take(t, bob.st, alice.addr)) {
				t.Error("a failed Decrypt changed the store")
			}
			// Its prekey message cannot restart it: the one-time prekey
			// is gone.
			if _, err := bob.m.Decrypt(t.Context(), alice.addr, firsts[i]); kind(err) != "unknown_prekey" {
				t.Errorf("prekey message of dropped session %d: %v; want unknown_prekey", i, err)
			}
			continue
		}
		if err != nil || string(pt) != fmt.Sprint("later ", i) {
			t.Errorf("message of archived session %d: %q, %v", i, pt, err)
		}
	}
	// The last one decrypted made the newest session current again.
	alice.decrypt(bob, bob.encrypt(alice, "current"), "current")
}

// TestPromotion: a message of an archived session makes it current, so
// that the answer goes out on the session the peer uses.
func TestPromotion(t *testing.T) {
	srv := newServer()
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	connect(t, srv, alice, bob)
	bob.decrypt(alice, alice.encrypt(bob, "s1"), "s1")
	alice.decrypt(bob, bob.encrypt(alice, "r1"), "r1")
	late := alice.encrypt(bob, "late on s1")

	connect(t, srv, alice, bob) // a second session, current at both ends
	bob.decrypt(alice, alice.encrypt(bob, "s2"), "s2")
	assertSessions(t, bob, alice.addr, 2)
	assertCurrent(t, bob, alice.addr, 0)

	bob.decrypt(alice, late, "late on s1")
	assertCurrent(t, bob, alice.addr, 1)
	// Bob answers on the first session; Alice reads it there and
	// promotes it too.
	alice.decrypt(bob, bob.encrypt(alice, "r on s1"), "r on s1")
	assertCurrent(t, alice, bob.addr, 1)
	bob.decrypt(alice, alice.encrypt(bob, "s1 again"), "s1 again")
	assertCurrent(t, bob, alice.addr, 1)
}

// assertCurrent checks the index of the current session in d's record for
// addr, which the format puts at offset 5 (0 is the newest).
func assertCurrent(t testing.TB, d *device, addr store.Address, want int) {
	t.Helper()
	rec := take(t, d.st, addr).records[addr]
	if len(rec) < 7 {
		t.Fatalf("%v has no record for %v", d.addr, addr)
	}
	if got := int(rec[5]); got != want {
		t.Errorf("%v's current session with %v is #%d, want #%d", d.addr, addr, got, want)
	}
}

// TestSimultaneousStart: Alice and Bob start sessions with each other at
// the same time. Each ends up with two; after a few messages both use the
// same one, and every message decrypts.
func TestSimultaneousStart(t *testing.T) {
	srv := newServer()
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, alice)
	srv.publish(t, bob)
	connect(t, srv, alice, bob)
	connect(t, srv, bob, alice)
	a1 := alice.encrypt(bob, "a1")
	b1 := bob.encrypt(alice, "b1")
	if a1[0] != typePreKey || b1[0] != typePreKey {
		t.Fatal("want prekey messages both ways")
	}
	bob.decrypt(alice, a1, "a1")   // Bob's current: responder session with Alice's EK
	alice.decrypt(bob, b1, "b1")   // Alice's current: responder session with Bob's EK
	a2 := alice.encrypt(bob, "a2") // on Alice's responder session: Bob's initiator session
	b2 := bob.encrypt(alice, "b2") // on Bob's responder session: Alice's initiator session
	bob.decrypt(alice, a2, "a2")   // promotes Bob's initiator session
	alice.decrypt(bob, b2, "b2")   // promotes Alice's initiator session
	// Now each side's current session is its own initiator session, and
	// those two are not a pair; one more round trip settles it.
	for i := range 4 {
		bob.decrypt(alice, alice.encrypt(bob, fmt.Sprint("a", i)), fmt.Sprint("a", i))
		alice.decrypt(bob, bob.encrypt(alice, fmt.Sprint("b", i)), fmt.Sprint("b", i))
	}
	assertSessions(t, alice, bob.addr, 2)
	assertSessions(t, bob, alice.addr, 2)
}

// TestTrustExplicit: no key is accepted until approved, the first one
// included.
func TestTrustExplicit(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	cfg := &session.Config{Trust: session.TrustExplicit}
	alice := newDevice(t, memory.New(), "alice", 1, cfg)
	bob := newDevice(t, memory.New(), "bob", 1, cfg)
	srv.publish(t, bob)
	b := srv.bundle(t, bob.addr, true)
	err := alice.m.StartSession(ctx, bob.addr, b)
	var ie *session.IdentityError
	if !errors.As(err, &ie) || ie.Trusted != nil || !ie.Received.Equal(b.IdentityKey) {
		t.Fatalf("StartSession with no approved key: %v, want an *IdentityError without a trusted key", err)
	}
	if err := alice.m.ApproveIdentity(ctx, bob.addr, ie.Received); err != nil {
		t.Fatal(err)
	}
	if err := alice.m.StartSession(ctx, bob.addr, b); err != nil {
		t.Fatal(err)
	}
	pm := alice.encrypt(bob, "hi")
	_, err = bob.m.Decrypt(ctx, alice.addr, pm)
	if !errors.As(err, &ie) || ie.Trusted != nil {
		t.Fatalf("Decrypt with no approved key: %v, want an *IdentityError", err)
	}
	ak, _, _ := alice.m.LocalIdentity(ctx)
	if err := bob.m.ApproveIdentity(ctx, alice.addr, ak); err != nil {
		t.Fatal(err)
	}
	bob.decrypt(alice, pm, "hi")
	alice.decrypt(bob, bob.encrypt(alice, "hello"), "hello")
	if k, err := bob.m.Identity(ctx, alice.addr); err != nil || !k.Equal(ak) {
		t.Errorf("Identity: %v, %v", k, err)
	}
}

// TestDeleteSession: deleting forgets the sessions but not the identity.
func TestDeleteSession(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	connect(t, srv, alice, bob)
	bob.decrypt(alice, alice.encrypt(bob, "hi"), "hi")
	for range 2 {
		if err := bob.m.DeleteSession(ctx, alice.addr); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := bob.m.HasSession(ctx, alice.addr); ok || err != nil {
		t.Errorf("HasSession after delete: %v, %v", ok, err)
	}
	if _, err := bob.m.Encrypt(ctx, alice.addr, nil); kind(err) != "no_session" {
		t.Errorf("Encrypt after delete: %v", err)
	}
	if _, err := bob.m.Identity(ctx, alice.addr); err != nil {
		t.Errorf("identity forgotten with the session: %v", err)
	}
	// Alice's next prekey message (she has not heard from Bob) starts over
	// at Bob: same EK_A, but the session is gone and so is the one-time
	// prekey.
	if _, err := bob.m.Decrypt(ctx, alice.addr, alice.encrypt(bob, "again")); kind(err) != "unknown_prekey" {
		t.Errorf("prekey message after delete: %v, want unknown_prekey", err)
	}
}

// TestCorruptRecord: a record the store damaged is reported, left alone,
// and replaced once the application deletes it.
func TestCorruptRecord(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	connect(t, srv, alice, bob)
	bob.decrypt(alice, alice.encrypt(bob, "hi"), "hi")
	rec := take(t, bob.st, alice.addr).records[alice.addr]
	rec[len(rec)/2] ^= 0xff // somewhere in the ratchet state
	rec = rec[:len(rec)-1]  // and truncated, so it cannot parse
	if err := bob.st.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, alice.addr, rec) }); err != nil {
		t.Fatal(err)
	}
	before := take(t, bob.st, alice.addr)
	if _, err := bob.m.Encrypt(ctx, alice.addr, []byte("x")); !errors.Is(err, session.ErrInvalidRecord) {
		t.Errorf("Encrypt on a damaged record: %v", err)
	}
	if _, err := bob.m.Decrypt(ctx, alice.addr, alice.encrypt(bob, "x")); !errors.Is(err, session.ErrInvalidRecord) {
		t.Errorf("Decrypt on a damaged record: %v", err)
	}
	if !before.equal(take(t, bob.st, alice.addr)) {
		t.Fatal("the damaged record was overwritten")
	}
	if err := bob.m.DeleteSession(ctx, alice.addr); err != nil {
		t.Fatal(err)
	}
	connect(t, srv, alice, bob)
	bob.decrypt(alice, alice.encrypt(bob, "again"), "again")
}
