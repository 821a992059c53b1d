package session_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestCacheSeesOtherWriters: a Manager keeps the records it used parsed
// in memory, and a second Manager on the same store (another process)
// changes what is stored behind it. The first one's next write finds the
// change and acts on what is stored: the other's message keys are not
// reused, the deleted session is gone, the newly approved key is the
// trusted one.
func TestCacheSeesOtherWriters(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		srv := newServer()
		open := b.fresh(t)
		alice1 := newDevice(t, open(t), "alice", 1, nil)
		alice2 := newDevice(t, open(t), "alice", 1, nil)
		bob := newDevice(t, b.fresh(t)(t), "bob", 1, nil)
		srv.publish(t, bob)
		connect(t, srv, alice1, bob)
		bob.decrypt(alice1, alice1.encrypt(bob, "one"), "one")
		alice1.decrypt(bob, bob.encrypt(alice1, "two"), "two")
		if n := session.CachedStates(alice1.m); n != 1 {
			t.Fatalf("%d cached states, want 1", n)
		}

		// alice2 advances the session: alice1's cached state is stale, and
		// its message must not reuse alice2's message key.
		m2 := alice2.encrypt(bob, "from 2")
		m1 := alice1.encrypt(bob, "from 1")
		if string(innerHeader(m1)) == string(innerHeader(m2)) {
			t.Fatal("a stale cached state reused a message key")
		}
		bob.decrypt(alice2, m2, "from 2")
		bob.decrypt(alice1, m1, "from 1")

		// alice2 deletes the session: alice1 has none.
		if err := alice2.m.DeleteSession(ctx, bob.addr); err != nil {
			t.Fatal(err)
		}
		if _, err := alice1.m.Encrypt(ctx, bob.addr, []byte("x")); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("Encrypt after another Manager deleted the session: %v, want ErrNoSession", err)
		}
		connect(t, srv, alice2, bob)
		bob.decrypt(alice2, alice2.encrypt(bob, "three"), "three")
		alice1.decrypt(bob, bob.encrypt(alice1, "four"), "four")
		// alice2 approves another key for bob: alice1 must refuse the old
		// session.
		other, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		if err := alice2.m.ApproveIdentity(ctx, bob.addr, other.PublicKey()); err != nil {
			t.Fatal(err)
		}
		if _, err := alice1.m.Encrypt(ctx, bob.addr, []byte("x")); !errors.Is(err, session.ErrUntrustedIdentity) {
			t.Fatalf("Encrypt after another Manager approved a new key: %v, want ErrUntrustedIdentity", err)
		}

	})
}

// TestCacheBound: the cache holds at most Config.CachedRecords states,
// none when it is negative, and every address still works.
func TestCacheBound(t *testing.T) {
	for _, c := range []struct{ cfg, want int }{{3, 3}, {-1, 0}} {
		t.Run(fmt.Sprint(c.cfg), func(t *testing.T) {
			srv := newServer()
			hub := newDevice(t, memory.New(), "hub", 1, &session.Config{CachedRecords: c.cfg})
			srv.publish(t, hub)
			var peers []*device
			for i := range 8 {
				p := newDevice(t, memory.New(), fmt.Sprint("peer", i), 1, nil)
				connect(t, srv, p, hub)
				peers = append(peers, p)
			}
			for round := range 3 {
				for _, p := range peers {
					pt := fmt.Sprint(p.addr.Name, " ", round)
					hub.decrypt(p, p.encrypt(hub, pt), pt)
					p.decrypt(hub, hub.encrypt(p, "re "+pt), "re "+pt)
				}
			}
			if n := session.CachedStates(hub.m); n != c.want {
				t.Errorf("%d cached states, want %d", n, c.want)
			}
			if n := session.LockEntries(hub.m); n != 0 {
				t.Errorf("%d lock entries left", n)
			}
		})
	}
}
