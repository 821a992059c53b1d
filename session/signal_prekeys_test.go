package session_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// kyberIDs lists st's Kyber prekeys.
func kyberIDs(t testing.TB, st store.Store) []store.KyberPreKeyInfo {
	t.Helper()
	var list []store.KyberPreKeyInfo
	err := st.View(t.Context(), func(tx store.Tx) error {
		kp, err := store.KyberPreKeysOf(tx)
		if err != nil {
			return err
		}
		list, err = kp.List(t.Context())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestSignalUpkeep: Upkeep keeps the one-time Kyber stock and rotates the
// last-resort Kyber prekey like the signed prekey; every published key
// verifies under the identity key; ResetIdentity replaces them all.
func TestSignalUpkeep(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	bob := newSignalDevice(t, memory.New(), "bob", 2, clock)
	u := bob.up
	for _, k := range append(u.KyberOneTimePreKeys, *u.KyberLastResort) {
		if err := kyber.VerifyPreKey(u.IdentityKey, k.Key, k.Signature); err != nil {
			t.Fatalf("Kyber prekey %d: %v", k.ID, err)
		}
	}
	if ot, lr := kyberCount(t, bob.st); ot != 4 || lr != 1 {
		t.Fatalf("%d one-time and %d last-resort Kyber prekeys", ot, lr)
	}
	u2, err := bob.m.Upkeep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if u2.KyberRotated || len(u2.KyberOneTimePreKeys) != 0 || u2.KyberLastResort.ID != u.KyberLastResort.ID {
		t.Fatalf("a second Upkeep changed the Kyber prekeys: rotated %v, %d new", u2.KyberRotated, len(u2.KyberOneTimePreKeys))
	}

	// Three one-time Kyber prekeys used: below the minimum of 2, refilled
	// to 4 with fresh ids.
	for i := range 3 {
		alice := newSignalDevice(t, memory.New(), "alice", uint32(10+i), clock)
		alice.start(bob, -1, i)
		bob.decrypt(alice.device, alice.encrypt(bob.device, "hi"), "hi")
	}
	u3, err := bob.m.Upkeep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(u3.KyberOneTimePreKeys) != 3 || u3.KyberOneTimePreKeys[0].ID <= u.KyberLastResort.ID {
		t.Fatalf("refill: %d new, first id %d", len(u3.KyberOneTimePreKeys), u3.KyberOneTimePreKeys[0].ID)
	}
	if ot, _ := kyberCount(t, bob.st); ot != 4 {
		t.Fatalf("%d one-time Kyber prekeys after the refill", ot)
	}

	// Rotation after Config.SignedPreKeyRotation, the old last-resort key
	// kept for the grace period, then removed.
	now = now.Add(8 * 24 * time.Hour)
	u4, err := bob.m.Upkeep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !u4.KyberRotated || u4.KyberLastResort.ID == u.KyberLastResort.ID {
		t.Fatal("the last-resort Kyber prekey was not rotated")
	}
	if _, lr := kyberCount(t, bob.st); lr != 2 {
		t.Fatalf("%d last-resort Kyber prekeys during the grace period, want 2", lr)
	}
	// A bundle with the old last-resort key still starts a session.
	late := newSignalDevice(t, memory.New(), "late", 20, clock)
	late.start(bob, -1, -1)
	bob.decrypt(late.device, late.encrypt(bob.device, "old bundle"), "old bundle")
	now = now.Add(31 * 24 * time.Hour)
	if _, err := bob.m.Upkeep(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, k := range kyberIDs(t, bob.st) {
		if k.ID == u.KyberLastResort.ID {
			t.Fatal("the replaced last-resort Kyber prekey outlived its grace period")
		}
	}

	// ResetIdentity: every Kyber prekey is replaced, signed by the new key.
	old := kyberIDs(t, bob.st)
	r, err := bob.m.ResetIdentity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !r.KyberRotated || r.KyberLastResort == nil || len(r.KyberOneTimePreKeys) != 4 {
		t.Fatalf("ResetIdentity's upload: rotated %v, %d one-time Kyber prekeys", r.KyberRotated, len(r.KyberOneTimePreKeys))
	}
	for _, k := range append(r.KyberOneTimePreKeys, *r.KyberLastResort) {
		if err := kyber.VerifyPreKey(r.IdentityKey, k.Key, k.Signature); err != nil {
			t.Fatalf("Kyber prekey %d after the reset: %v", k.ID, err)
		}
	}
	after := kyberIDs(t, bob.st)
	if len(after) != 5 {
		t.Fatalf("%d Kyber prekeys after the reset, want 5", len(after))
	}
	for _, o := range old {
		for _, a := range after {
			if o.ID == a.ID {
				t.Fatalf("Kyber prekey %d survived ResetIdentity", o.ID)
			}
		}
	}
	// The old bundle no longer starts a session.
	alice := newSignalDevice(t, memory.New(), "alice2", 30, clock)
	alice.start(bob, -1, -1)
	if _, err := bob.m.Decrypt(t.Context(), alice.addr, alice.encrypt(bob.device, "x")); !errors.Is(err, session.ErrUnknownPreKey) {
		t.Fatalf("a message from the bundle before ResetIdentity: %v, want ErrUnknownPreKey", err)
	}
}
