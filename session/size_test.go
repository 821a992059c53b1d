package session_test

import (
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestMaxMessageSize: Encrypt refuses a plaintext above
// Config.MaxMessageSize, and Decrypt a message that carries one, before
// anything else: a long message from an address without a session is
// ErrTooLarge, not ErrNoSession, and nothing is saved.
func TestMaxMessageSize(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	bob := newDevice(t, memory.New(), "bob", 1, &session.Config{MaxMessageSize: 100})
	carol := newDevice(t, memory.New(), "carol", 1, nil)
	srv.publish(t, bob)
	connect(t, srv, alice, bob)

	// The default limit at Alice: 64 KiB exactly is fine, one more is not.
	if _, err := alice.m.Encrypt(ctx, bob.addr, make([]byte, session.DefaultMaxMessageSize+1)); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("Encrypt of 64 KiB + 1: %v, want ErrTooLarge", err)
	}
	before := take(t, alice.st, bob.addr)
	big, err := alice.m.Encrypt(ctx, bob.addr, make([]byte, 101))
	if err != nil {
		t.Fatal(err)
	}
	if before.equal(take(t, alice.st, bob.addr)) {
		t.Fatal("a successful Encrypt saved nothing")
	}
	// Bob's limit is 100: the prekey message is refused, its one-time
	// prekey kept, nothing saved.
	bobBefore := take(t, bob.st, alice.addr)
	if _, err := bob.m.Decrypt(ctx, alice.addr, big); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("Decrypt of 101 bytes at a limit of 100: %v, want ErrTooLarge", err)
	}
	if !bobBefore.equal(take(t, bob.st, alice.addr)) {
		t.Error("a refused message changed the store")
	}
	// A ratchet message from an address with no session at all.
	inner := innerHeader(big)
	long := append(append([]byte(nil), inner...), make([]byte, 101+16)...)
	if _, err := bob.m.Decrypt(ctx, carol.addr, long); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("long ratchet message from an unknown address: %v, want ErrTooLarge", err)
	}
	// 100 bytes pass, both ways.
	pt := string(make([]byte, 100))
	bob.decrypt(alice, alice.encrypt(bob, pt), pt)
	alice.decrypt(bob, bob.encrypt(alice, pt), pt)
	if _, err := bob.m.Encrypt(ctx, alice.addr, make([]byte, 101)); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("Encrypt of 101 bytes at a limit of 100: %v, want ErrTooLarge", err)
	}
	if _, err := session.New(memory.New(), &session.Config{MaxMessageSize: -1}); err == nil {
		t.Error("New accepted a negative MaxMessageSize")
	}
}
