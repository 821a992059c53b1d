package session_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestResetIdentity: Bob starts over under a new identity key. His
// sessions and prekeys are gone, his trust in Alice's key stays, Alice's
// old messages and old bundle no longer work, and once Alice approves
// the new key they talk again.
func TestResetIdentity(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		srv := newServer()
		alice := newDevice(t, b.fresh(t)(t), "alice", 1, nil)
		bob := newDevice(t, b.fresh(t)(t), "bob", 1, nil)
		srv.publish(t, bob)
		old, err := bob.m.PreKeyUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		staleBundle := srv.bundle(t, bob.addr, true)
		connect(t, srv, alice, bob)
		bob.decrypt(alice, alice.encrypt(bob, "hi"), "hi")
		alice.decrypt(bob, bob.encrypt(alice, "hello"), "hello")
		late := alice.encrypt(bob, "in flight")

		u, err := bob.m.ResetIdentity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if u.IdentityKey.Equal(old.IdentityKey) || !u.Rotated {
			t.Fatal("ResetIdentity kept the identity key or did not report a rotation")
		}
		if u.SignedPreKeyID <= old.SignedPreKeyID {
			t.Errorf("new signed prekey id %d, want above the old %d", u.SignedPreKeyID, old.SignedPreKeyID)
		}
		if len(u.OneTimePreKeys) != session.DefaultOneTimePreKeys || u.OneTimePreKeys[0].ID <= session.DefaultOneTimePreKeys {
			t.Errorf("%d new one-time prekeys from id %d, want %d with ids above the old ones", len(u.OneTimePreKeys), u.OneTimePreKeys[0].ID, session.DefaultOneTimePreKeys)
		}
		if pub, dev, err := bob.m.LocalIdentity(ctx); err != nil || !pub.Equal(u.IdentityKey) || dev != 1 {
			t.Fatalf("LocalIdentity after the reset: %v, %d, %v", pub, dev, err)
		}
		st, err := bob.m.PreKeyStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.OneTimePreKeys != session.DefaultOneTimePreKeys || st.SignedPreKeys != 1 {
			t.Errorf("after the reset: %d one-time and %d signed prekeys, want %d and 1", st.OneTimePreKeys, st.SignedPreKeys, session.DefaultOneTimePreKeys)
		}
		if ok, err := bob.m.HasSession(ctx, alice.addr); ok || err != nil {
			t.Fatalf("HasSession after the reset: %v, %v", ok, err)
		}
		if k, err := bob.m.Identity(ctx, alice.addr); err != nil || !k.Equal(alice.identity(t)) {
			t.Fatalf("Alice's trusted key after the reset: %v", err)
		}
		// What Alice sees.
		if _, err := bob.m.Decrypt(ctx, alice.addr, late); kind(err) != "no_session" {
			t.Errorf("a message on an old session: %v, want no_session", err)
		}
		carol := newDevice(t, b.fresh(t)(t), "carol", 1, nil)
		if err := carol.m.StartSession(ctx, bob.addr, staleBundle); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.m.Decrypt(ctx, carol.addr, carol.encrypt(bob, "old bundle")); kind(err) != "unknown_prekey" {
			t.Errorf("a prekey message from an old bundle: %v, want unknown_prekey", err)
		}
		srv.publish(t, bob) // the server takes the new bundle
		err = alice.m.StartSession(ctx, bob.addr, srv.bundle(t, bob.addr, true))
		if kind(err) != "untrusted_identity" {
			t.Fatalf("StartSession with Bob's new bundle: %v, want untrusted_identity", err)
		}
		if err := alice.m.ApproveIdentity(ctx, bob.addr, u.IdentityKey); err != nil {
			t.Fatal(err)
		}
		connect(t, srv, alice, bob)
		bob.decrypt(alice, alice.encrypt(bob, "again"), "again")
		alice.decrypt(bob, bob.encrypt(alice, "welcome back"), "welcome back")
	})
}

// TestPruneOneTimePreKeys: the keys a server handed out that nobody used
// are deleted when the application says so; the ones still on the server
// stay, and a prekey message naming a pruned key is refused.
func TestPruneOneTimePreKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		srv := newServer()
		bob := newDevice(t, b.fresh(t)(t), "bob", 1, nil)
		alice := newDevice(t, b.fresh(t)(t), "alice", 1, nil)
		srv.publish(t, bob)
		// Three bundles handed out: one used, two never.
		connect(t, srv, alice, bob)
		bob.decrypt(alice, alice.encrypt(bob, "hi"), "hi")
		unused1 := srv.bundle(t, bob.addr, true)
		srv.bundle(t, bob.addr, true)
		onServer := map[uint32]bool{}
		for _, k := range srv.opks[bob.addr] {
			onServer[k.ID] = true
		}
		n, err := bob.m.PruneOneTimePreKeys(ctx, func(id uint32) bool { return onServer[id] })
		if err != nil || n != 2 {
			t.Fatalf("PruneOneTimePreKeys: %d, %v; want 2 pruned", n, err)
		}
		st, err := bob.m.PreKeyStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.OneTimePreKeys != len(onServer) {
			t.Errorf("%d one-time prekeys left, want the %d on the server", st.OneTimePreKeys, len(onServer))
		}
		carol := newDevice(t, b.fresh(t)(t), "carol", 1, nil)
		if err := carol.m.StartSession(ctx, bob.addr, unused1); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.m.Decrypt(ctx, carol.addr, carol.encrypt(bob, "late")); kind(err) != "unknown_prekey" {
			t.Errorf("a prekey message naming a pruned key: %v, want unknown_prekey", err)
		}
		// Pruning again finds nothing to do.
		if n, err := bob.m.PruneOneTimePreKeys(ctx, func(id uint32) bool { return onServer[id] }); n != 0 || err != nil {
			t.Errorf("second PruneOneTimePreKeys: %d, %v", n, err)
		}
	})
}

// identity returns d's identity key.
func (d *device) identity(t testing.TB) *keys.PublicKey {
	t.Helper()
	k, _, err := d.m.LocalIdentity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hookStore runs hook once, after the View whose number is at.
type hookStore struct {
	store.Store
	views, at int
	hook      func()
}

func (h *hookStore) View(ctx context.Context, fn func(store.Tx) error) error {
	err := h.Store.View(ctx, fn)
	if h.views++; h.views == h.at {
		h.hook()
	}
	return err
}

// TestResetDuringStart: another Manager resets the identity while
// StartSession runs X3DH with the old key. The write finds the local
// identity changed and StartSession starts over under the new key: no
// session made under the old identity key is saved.
func TestResetDuringStart(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	st := memory.New()
	other := newDevice(t, st, "alice", 1, nil)
	hs := &hookStore{Store: st, at: 2} // the record's View, then the local identity's
	m, err := session.New(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fresh *keys.PublicKey
	hs.hook = func() {
		u, err := other.m.ResetIdentity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fresh = u.IdentityKey
	}
	if err := m.StartSession(ctx, bob.addr, srv.bundle(t, bob.addr, true)); err != nil {
		t.Fatal(err)
	}
	if fresh == nil {
		t.Fatal("the reset did not run")
	}
	rec := take(t, st, bob.addr).records[bob.addr]
	// magic, version, current, count; role, peer key; flags, then IK_A.
	const ikA = 4 + 3 + 1 + 33 + 1
	if len(rec) < ikA+33 || !bytes.Equal(rec[ikA:ikA+33], fresh.Encode()) {
		t.Fatal("the saved session was made under the old identity key")
	}
}
