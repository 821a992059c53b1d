package session_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestStormOneAddress: goroutines on both sides encrypt and decrypt on
// one session at the same time, messages arriving in any order. Calls for
// the address are serialized, so no message number is used twice and
// every message decrypts exactly once.
func TestStormOneAddress(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		srv := newServer()
		alice := newDevice(t, b.fresh(t)(t), "alice", 1, nil)
		bob := newDevice(t, b.fresh(t)(t), "bob", 1, nil)
		srv.publish(t, bob)
		connect(t, srv, alice, bob)
		bob.decrypt(alice, alice.encrypt(bob, "start"), "start")
		alice.decrypt(bob, bob.encrypt(alice, "start"), "start")

		const workers = 4
		n := 40
		if testing.Short() || b.name != "memory" {
			n = 10
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4*workers*n)
		run := func(from, to *device, seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 0))
			ch := make(chan inflight, n)
			var inner sync.WaitGroup
			inner.Add(1)
			go func() { // the receiver, in a random order per batch
				defer inner.Done()
				var batch []inflight
				flush := func() {
					rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
					for _, m := range batch {
						pt, err := to.m.Decrypt(context.Background(), from.addr, m.msg)
						if err != nil || string(pt) != m.pt {
							errs <- fmt.Errorf("%v decrypting %q: %q, %v", to.addr, m.pt, pt, err)
						}
					}
					batch = batch[:0]
				}
				for m := range ch {
					if batch = append(batch, m); len(batch) == 5 {
						flush()
					}
				}
				flush()
			}()
			for i := range n {
				pt := fmt.Sprintf("%s %d %d", from.addr.Name, seed, i)
				msg, err := from.m.Encrypt(context.Background(), to.addr, []byte(pt))
				if err != nil {
					errs <- err
					continue
				}
				ch <- inflight{msg, pt}
			}
			close(ch)
			inner.Wait()
		}
		for w := range workers {
			wg.Add(2)
			go run(alice, bob, uint64(w))
			go run(bob, alice, uint64(100+w))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, d := range []*device{alice, bob} {
			if k := session.LockEntries(d.m); k != 0 {
				t.Errorf("%v: %d lock entries left", d.addr, k)
			}
		}
	})
}

// TestStormManyAddresses: 100 peers start sessions with one device and
// converse with it at the same time; its Manager serves them in parallel.
func TestStormManyAddresses(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		peers := 100
		if testing.Short() || b.name != "memory" {
			peers = 20
		}
		srv := newServer()
		hub := newDevice(t, b.fresh(t)(t), "hub", 1, &session.Config{OneTimePreKeys: peers + 10})
		srv.publish(t, hub)
		var wg sync.WaitGroup
		errs := make(chan error, peers)
		for i := range peers {
			// Peers keep their own state in memory: the store under test
			// is the hub's.
			p := newDevice(t, memory.New(), fmt.Sprint("peer", i%10), uint32(i), nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- func() (err error) {
					defer func() {
						if r := recover(); r != nil {
							err = fmt.Errorf("%v", r)
						}
					}()
					ctx := context.Background()
					if err := p.m.StartSession(ctx, hub.addr, srv.bundle(t, hub.addr, true)); err != nil {
						return err
					}
					for j := range 3 {
						pt := fmt.Sprint(p.addr, j)
						m, err := p.m.Encrypt(ctx, hub.addr, []byte(pt))
						if err != nil {
							return err
						}
						got, err := hub.m.Decrypt(ctx, p.addr, m)
						if err != nil || string(got) != pt {
							return fmt.Errorf("hub decrypting %q from %v: %q, %v", pt, p.addr, got, err)
						}
						r, err := hub.m.Encrypt(ctx, p.addr, got)
						if err != nil {
							return err
						}
						if got, err := p.m.Decrypt(ctx, hub.addr, r); err != nil || string(got) != pt {
							return fmt.Errorf("%v decrypting: %q, %v", p.addr, got, err)
						}
					}
					return nil
				}()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		st, err := hub.m.PreKeyStatus(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.OneTimePreKeys != 10 {
			t.Errorf("%d one-time prekeys left, want 10", st.OneTimePreKeys)
		}
		if k := session.LockEntries(hub.m); k != 0 {
			t.Errorf("%d lock entries left", k)
		}
	})
}

// gatedStore calls before at the start of every Update.
type gatedStore struct {
	store.Store
	before func()
}

func (g *gatedStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	g.before()
	return g.Store.Update(ctx, fn)
}

// TestOneTimePreKeyRace: a server hands one one-time prekey to two peers.
// Their prekey messages decrypt at the same time, each outside the write
// transaction; the first commit consumes the prekey, and the second
// decryption then fails with ErrUnknownPreKey and saves nothing.
func TestOneTimePreKeyRace(t *testing.T) {
	ctx := t.Context()
	mem := memory.New()
	reached, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	gs := &gatedStore{Store: mem, before: func() {}}
	bob := newDevice(t, gs, "bob", 1, nil)
	srv := newServer()
	srv.publish(t, bob)
	bundle := srv.bundle(t, bob.addr, true)
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	carol := newDevice(t, memory.New(), "carol", 1, nil)
	for _, d := range []*device{alice, carol} {
		if err := d.m.StartSession(ctx, bob.addr, bundle); err != nil {
			t.Fatal(err)
		}
	}
	ma, mc := alice.encrypt(bob, "from alice"), carol.encrypt(bob, "from carol")
	before := take(t, mem, alice.addr)

	gs.before = func() {
		if calls.Add(1) == 1 { // Alice's commit waits
			close(reached)
			<-release
		}
	}
	done := make(chan error)
	go func() {
		_, err := bob.m.Decrypt(ctx, alice.addr, ma)
		done <- err
	}()
	<-reached
	bob.decrypt(carol, mc, "from carol")
	close(release)
	if err := <-done; !errors.Is(err, session.ErrUnknownPreKey) {
		t.Fatalf("the losing decryption: %v, want ErrUnknownPreKey", err)
	}
	after := take(t, mem, alice.addr)
	if len(after.records) != 0 || len(after.identities) != 0 {
		t.Error("the losing decryption saved a session or an identity")
	}
	if after.opks != before.opks-1 {
		t.Errorf("%d one-time prekeys, want %d", after.opks, before.opks-1)
	}
	// Carol's session works.
	carol.decrypt(bob, bob.encrypt(carol, "hi carol"), "hi carol")
}

// TestSharedStore: two Managers (as two processes would) use one store
// for the same device and encrypt to the same peer at the same time.
// Each write checks that the record is still the one it read and redoes
// the operation otherwise, so no message key is used twice: every
// message decrypts.
func TestSharedStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		srv := newServer()
		open := b.fresh(t)
		alice1 := newDevice(t, open(t), "alice", 1, nil)
		alice2 := newDevice(t, open(t), "alice", 1, nil)
		bob := newDevice(t, b.fresh(t)(t), "bob", 1, nil)
		srv.publish(t, bob)
		connect(t, srv, alice1, bob)
		bob.decrypt(alice1, alice1.encrypt(bob, "start"), "start")

		n := 30
		if testing.Short() || b.name != "memory" {
			n = 8
		}
		var mu sync.Mutex
		var msgs []inflight
		var conflicts atomic.Int32
		var wg sync.WaitGroup
		for w, a := range []*device{alice1, alice2, alice1, alice2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n; {
					pt := fmt.Sprint(w, " ", i)
					m, err := a.m.Encrypt(ctx, bob.addr, []byte(pt))
					if errors.Is(err, session.ErrConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					msgs = append(msgs, inflight{m, pt})
					mu.Unlock()
					i++
				}
			}()
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, m := range msgs {
			h := string(innerHeader(m.msg))
			if seen[h] {
				t.Fatalf("two messages with the same header: a message key used twice")
			}
			seen[h] = true
			bob.decrypt(alice1, m.msg, m.pt)
		}
		t.Logf("%d messages, %d operations gave up with ErrConflict", len(msgs), conflicts.Load())
	})
}
