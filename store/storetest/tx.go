package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

// fixture is a store state touching every area, and a transaction that
// changes every area of it.
type fixture struct {
	ik1, ik2   *keys.IdentityKeyPair
	k1, k2, k3 *keys.PublicKey
	pks        []*keys.OneTimePreKey // ids 1, 2, 10
	spk1, spk2 *keys.SignedPreKey
	a, b, c    store.Address
}

func newFixture(t testing.TB, s store.Store) *fixture {
	t.Helper()
	ik1 := newIdentity(t)
	f := &fixture{
		ik1: ik1, ik2: newIdentity(t),
		k1: newPublicKey(t), k2: newPublicKey(t), k3: newPublicKey(t),
		pks:  newPreKeys(t, 1, 2, 10),
		spk1: newSignedPreKey(t, ik1, 1, time.Unix(1_700_000_000, 0)),
		spk2: newSignedPreKey(t, ik1, 2, time.Unix(1_700_086_400, 0)),
		a:    store.Address{Name: "alice", DeviceID: 1},
		b:    store.Address{Name: "alice", DeviceID: 2},
		c:    store.Address{Name: "carol", DeviceID: 1},
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return errors.Join(
			tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: f.ik1, DeviceID: 1}),
			second(tx.Identities().Save(ctx, f.a, f.k1)),
			second(tx.Identities().Save(ctx, f.c, f.k1)),
			tx.PreKeys().Add(ctx, f.pks[:2]),
			tx.SignedPreKeys().Add(ctx, f.spk1),
			tx.Sessions().Save(ctx, f.a, []byte("a old")),
			tx.Sessions().Save(ctx, f.c, []byte("c old")),
		)
	})
	return f
}

func second[T any](_ T, err error) error { return err }

// change makes the new state out of the old one, in every area, and
// returns the first error.
func (f *fixture) change(ctx context.Context, tx store.Tx) error {
	changed, err := tx.Identities().Save(ctx, f.a, f.k2)
	if err == nil && !changed {
		err = errors.New("storetest: Identities.Save did not report a changed key")
	}
	return errors.Join(
		err,
		tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: f.ik2, DeviceID: 2}),
		second(tx.Identities().Save(ctx, f.b, f.k3)),
		second(tx.Identities().Save(ctx, f.c, f.k3)),
		tx.PreKeys().Remove(ctx, 1),
		tx.PreKeys().Add(ctx, f.pks[2:]),
		tx.SignedPreKeys().Add(ctx, f.spk2),
		tx.SignedPreKeys().Remove(ctx, 1),
		tx.Sessions().Save(ctx, f.a, []byte("a new")),
		tx.Sessions().Save(ctx, f.b, []byte("b new")),
		tx.Sessions().Delete(ctx, f.c),
	)
}

// check verifies that the store holds the old state (changed false) or the
// new one (changed true), all of it.
func (f *fixture) check(t testing.TB, s store.Store, changed bool) {
	t.Helper()
	which := map[bool]string{false: "old", true: "new"}[changed]
	pick := func(old, new any) any {
		if changed {
			return new
		}
		return old
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		if l, err := tx.Local().Load(ctx); err != nil {
			bad("Local.Load: %v", err)
		} else if !l.KeyPair.PrivateKey().Equal(pick(f.ik1, f.ik2).(*keys.IdentityKeyPair).PrivateKey()) || l.DeviceID != pick(uint32(1), uint32(2)) {
			bad("local identity")
		}

		identity := func(a store.Address, want *keys.PublicKey) {
			k, err := tx.Identities().Load(ctx, a)
			switch {
			case want == nil && !errors.Is(err, store.ErrNotFound):
				bad("identity of %v: got %v, %v; want ErrNotFound", a, k, err)
			case want != nil && (err != nil || !k.Equal(want)):
				bad("identity of %v: got %v, %v", a, k, err)
			}
		}
		identity(f.a, pick(f.k1, f.k2).(*keys.PublicKey))
		identity(f.b, pick((*keys.PublicKey)(nil), f.k3).(*keys.PublicKey))
		identity(f.c, pick(f.k1, f.k3).(*keys.PublicKey))

		for i, present := range pick([]bool{true, true, false}, []bool{false, true, true}).([]bool) {
			pk := f.pks[i]
			got, err := tx.PreKeys().Load(ctx, pk.ID())
			switch {
			case !present && !errors.Is(err, store.ErrNotFound):
				bad("prekey %d: got %v, want ErrNotFound", pk.ID(), err)
			case present && (err != nil || !got.PrivateKey().Equal(pk.PrivateKey())):
				bad("prekey %d: %v", pk.ID(), err)
			}
		}
		n, err := tx.PreKeys().Count(ctx)
		if err != nil || n != 2 {
			bad("prekey count %d, %v; want 2", n, err)
		}
		if last, err := tx.PreKeys().LastID(ctx); err != nil || last != pick(uint32(2), uint32(10)) {
			bad("last prekey id %d, %v", last, err)
		}

		infos, err := tx.SignedPreKeys().List(ctx)
		if err != nil || len(infos) != 1 || infos[0].ID != pick(uint32(1), uint32(2)) {
			bad("signed prekeys %v, %v", infos, err)
		}

		record := func(a store.Address, want string) {
			got, err := tx.Sessions().Load(ctx, a)
			switch {
			case want == "" && !errors.Is(err, store.ErrNotFound):
				bad("session of %v: got %q, %v; want ErrNotFound", a, got, err)
			case want != "" && (err != nil || string(got) != want):
				bad("session of %v: got %q, %v; want %q", a, got, err, want)
			}
		}
		record(f.a, pick("a old", "a new").(string))
		record(f.b, pick("", "b new").(string))
		record(f.c, pick("c old", "").(string))
		devs, err := tx.Sessions().Devices(ctx, "alice")
		if err != nil || !slices.Equal(devs, pick([]uint32{1}, []uint32{1, 2}).([]uint32)) {
			bad("devices of alice: %v, %v", devs, err)
		}
		return nil
	})
	if len(problems) > 0 {
		t.Errorf("the store does not hold the whole %s state:\n\t%s", which, strings.Join(problems, "\n\t"))
	}
}

var errSentinel = errors.New("storetest: fn failed")

// testReadYourWrites checks that reads inside an Update see its own
// uncommitted writes, as the session layer's load-decrypt-save expects.
func testReadYourWrites(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := f.change(ctx, tx); err != nil {
			return err
		}
		// A transaction sees its own writes before it commits.
		f.checkInTx(t, ctx, tx)
		return nil
	})
	f.check(t, s, true)
}

// checkInTx checks a sample of the new state from inside the transaction
// that wrote it.
func (f *fixture) checkInTx(t testing.TB, ctx context.Context, tx store.Tx) {
	t.Helper()
	if l, err := tx.Local().Load(ctx); err != nil || l.DeviceID != 2 {
		t.Errorf("in the writing transaction: local identity %v, %v", l, err)
	}
	if k, err := tx.Identities().Load(ctx, f.a); err != nil || !k.Equal(f.k2) {
		t.Errorf("in the writing transaction: identity %v, %v", k, err)
	}
	if k, err := tx.Identities().Load(ctx, f.c); err != nil || !k.Equal(f.k3) {
		t.Errorf("in the writing transaction: replaced identity %v, %v", k, err)
	}
	if _, err := tx.PreKeys().Load(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("in the writing transaction: removed prekey: %v", err)
	}
	if _, err := tx.PreKeys().Load(ctx, 10); err != nil {
		t.Errorf("in the writing transaction: added prekey: %v", err)
	}
	if n, err := tx.PreKeys().Count(ctx); err != nil || n != 2 {
		t.Errorf("in the writing transaction: Count %d, %v; want 2", n, err)
	}
	if last, err := tx.PreKeys().LastID(ctx); err != nil || last != 10 {
		t.Errorf("in the writing transaction: LastID %d, %v; want 10", last, err)
	}
	if infos, err := tx.SignedPreKeys().List(ctx); err != nil || len(infos) != 1 || infos[0].ID != 2 {
		t.Errorf("in the writing transaction: signed prekeys %v, %v", infos, err)
	}
	if _, err := tx.SignedPreKeys().Load(ctx, 2); err != nil {
		t.Errorf("in the writing transaction: added signed prekey: %v", err)
	}
	if rec, err := tx.Sessions().Load(ctx, f.b); err != nil || string(rec) != "b new" {
		t.Errorf("in the writing transaction: session %q, %v", rec, err)
	}
	if _, err := tx.Sessions().Load(ctx, f.c); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("in the writing transaction: deleted session: %v", err)
	}
	if devs, err := tx.Sessions().Devices(ctx, "alice"); err != nil || !slices.Equal(devs, []uint32{1, 2}) {
		t.Errorf("in the writing transaction: devices %v, %v", devs, err)
	}
	if devs, err := tx.Sessions().Devices(ctx, "carol"); err != nil || len(devs) != 0 {
		t.Errorf("in the writing transaction: devices of carol %v, %v", devs, err)
	}
}

func testCommit(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	f.check(t, s, false)
	update(t, s, f.change)
	f.check(t, s, true)
}

// testRollbackOnError checks that nothing fn wrote survives its error, in
// any area, and that the error comes back unwrapped, so that the session
// layer's typed errors reach its caller.
func testRollbackOnError(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	err := s.Update(t.Context(), func(tx store.Tx) error {
		if err := f.change(t.Context(), tx); err != nil {
			t.Errorf("change: %v", err)
		}
		return errSentinel
	})
	if err != errSentinel {
		t.Errorf("Update returned %v, want fn's error as it is", err)
	}
	f.check(t, s, false)
}

// testRollbackOnPanic checks that a panic in fn rolls back, propagates with
// its value, and leaves the store unlocked.
func testRollbackOnPanic(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	type panicValue struct{ n int }
	func() {
		defer func() {
			if r := recover(); r != (panicValue{42}) {
				t.Errorf("recovered %v, want fn's panic value", r)
			}
		}()
		s.Update(t.Context(), func(tx store.Tx) error {
			if err := f.change(t.Context(), tx); err != nil {
				t.Errorf("change: %v", err)
			}
			panic(panicValue{42})
		})
		t.Error("Update returned after fn panicked")
	}()
	f.check(t, s, false)

	// The store is still usable: the panic released what Update held.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if err := s.Update(ctx, func(tx store.Tx) error { return f.change(ctx, tx) }); err != nil {
		t.Fatalf("Update after a panic: %v", err)
	}
	f.check(t, s, true)
}

// testRollbackOnCanceledContext checks that an Update whose context ends
// before it commits commits nothing, even though fn succeeded.
func testRollbackOnCanceledContext(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := f.change(ctx, tx); err != nil {
			t.Errorf("change: %v", err)
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update whose context ended in fn returned %v, want context.Canceled", err)
	}
	f.check(t, s, false)
}

// testDecryptCommitPattern runs the transaction the session layer makes
// after a prekey message: save the new session, consume the one-time prekey
// and record the peer's identity, all or nothing.
func testDecryptCommitPattern(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	peer := store.Address{Name: "dave", DeviceID: 9}
	consume := func(ctx context.Context, tx store.Tx, record string) error {
		opk, err := tx.PreKeys().Load(ctx, 1)
		if err != nil {
			return err
		}
		_ = opk // the session layer would run X3DH and decrypt here
		if err := tx.Sessions().Save(ctx, peer, []byte(record)); err != nil {
			return err
		}
		if err := tx.PreKeys().Remove(ctx, 1); err != nil {
			return err
		}
		_, err = tx.Identities().Save(ctx, peer, f.k3)
		return err
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return consume(ctx, tx, "first") })

	// A replay of the prekey message finds the prekey gone: nothing is saved.
	err := s.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Sessions().Save(t.Context(), peer, []byte("replay")); err != nil {
			return err
		}
		return consume(t.Context(), tx, "replay")
	})
	wantNotFound(t, err, "Update consuming a consumed prekey")
	if got := loadRecord(t, s, peer); string(got) != "first" {
		t.Errorf("session after the failed replay: %q, want %q", got, "first")
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		if n, err := tx.PreKeys().Count(ctx); err != nil || n != 1 {
			t.Errorf("prekey count %d, %v; want 1", n, err)
		}
		if k, err := tx.Identities().Load(ctx, peer); err != nil || !k.Equal(f.k3) {
			t.Errorf("peer identity: %v, %v", k, err)
		}
		return nil
	})
}

// testViewIsReadOnly checks that every write method fails inside a View and
// changes nothing, even though fn returns no error of its own.
func testViewIsReadOnly(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	err := s.View(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		writes := map[string]error{
			"Local.Save":           tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: f.ik2, DeviceID: 2}),
			"Identities.Save":      second(tx.Identities().Save(ctx, f.a, f.k2)),
			"PreKeys.Add":          tx.PreKeys().Add(ctx, f.pks[2:]),
			"PreKeys.Remove":       tx.PreKeys().Remove(ctx, 1),
			"SignedPreKeys.Add":    tx.SignedPreKeys().Add(ctx, f.spk2),
			"SignedPreKeys.Remove": tx.SignedPreKeys().Remove(ctx, 1),
			"Sessions.Save":        tx.Sessions().Save(ctx, f.a, []byte("a new")),
			"Sessions.Delete":      tx.Sessions().Delete(ctx, f.c),
		}
		for name, err := range writes {
			if err == nil {
				t.Errorf("%s succeeded in a View", name)
			}
		}
		return errSentinel
	})
	if err != errSentinel {
		t.Errorf("View returned %v, want fn's error as it is", err)
	}
	f.check(t, s, false)
}

// testTxUnusableAfterEnd checks that a Tx kept past its transaction can
// neither read nor write: a write through it would escape every atomicity
// guarantee.
func testTxUnusableAfterEnd(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.Address{Name: "eve", DeviceID: 1}
	saveRecord(t, s, a, []byte("kept"))
	leak := map[string]store.Tx{}
	update(t, s, func(_ context.Context, tx store.Tx) error { leak["committed Update"] = tx; return nil })
	s.Update(ctx, func(tx store.Tx) error { leak["failed Update"] = tx; return errSentinel })
	view(t, s, func(_ context.Context, tx store.Tx) error { leak["View"] = tx; return nil })
	for name, tx := range leak {
		if _, err := tx.Sessions().Load(ctx, a); err == nil {
			t.Errorf("Sessions.Load on the Tx of a finished %s succeeded", name)
		}
		if err := tx.Sessions().Save(ctx, a, []byte("late")); err == nil {
			t.Errorf("Sessions.Save on the Tx of a finished %s succeeded", name)
		}
		if err := tx.PreKeys().Add(ctx, newPreKeys(t, 77)); err == nil {
			t.Errorf("PreKeys.Add on the Tx of a finished %s succeeded", name)
		}
	}
	if got := loadRecord(t, s, a); string(got) != "kept" {
		t.Errorf("a write through a finished Tx reached the store: %q", got)
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PreKeys().Load(ctx, 77)
		wantNotFound(t, err, "prekey added through a finished Tx")
		return nil
	})
}

func testContextDoneBeforeStart(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	fn := func(store.Tx) error { called = true; return nil }
	if err := s.Update(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a canceled context returned %v", err)
	}
	if err := s.View(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("View with a canceled context returned %v", err)
	}
	if called {
		t.Error("fn ran with a canceled context")
	}
}

// testContextDoneInMethod checks that each method honours its own context
// and that a write refused for it reaches nothing.
func testContextDoneInMethod(t *testing.T, s store.Store) {
	a := store.Address{Name: "frank", DeviceID: 1}
	saveRecord(t, s, a, []byte("kept"))
	dead, cancel := context.WithCancel(t.Context())
	cancel()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Sessions().Load(dead, a); !errors.Is(err, context.Canceled) {
			t.Errorf("Sessions.Load with a canceled context returned %v", err)
		}
		if err := tx.Sessions().Save(dead, a, []byte("lost")); !errors.Is(err, context.Canceled) {
			t.Errorf("Sessions.Save with a canceled context returned %v", err)
		}
		if _, err := tx.PreKeys().Count(dead); !errors.Is(err, context.Canceled) {
			t.Errorf("PreKeys.Count with a canceled context returned %v", err)
		}
		return nil
	})
	if got := loadRecord(t, s, a); string(got) != "kept" {
		t.Errorf("a Save that failed on its context reached the store: %q", got)
	}
}

// hold runs an Update that makes a write and then waits until release is
// called. It returns once the write is made.
func hold(t testing.TB, s store.Store, write func(ctx context.Context, tx store.Tx) error) (release func() error) {
	t.Helper()
	holding := make(chan struct{})
	releaseCh := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		done <- s.Update(ctx, func(tx store.Tx) error {
			err := write(ctx, tx)
			close(holding)
			<-releaseCh
			return err
		})
	}()
	select {
	case <-holding:
	case err := <-done:
		t.Fatalf("the holding Update ended early: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("the holding Update did not start")
	}
	release = sync.OnceValue(func() error {
		close(releaseCh)
		select {
		case err := <-done:
			return err
		case <-time.After(testTimeout):
			return errors.New("storetest: the holding Update did not finish")
		}
	})
	t.Cleanup(func() { release() })
	return release
}

// testWaitForWriterHonorsContext checks that an Update queued behind a
// long one gives up when its context ends, without running fn.
func testWaitForWriterHonorsContext(t *testing.T, s store.Store) {
	a := store.Address{Name: "gina", DeviceID: 1}
	release := hold(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Sessions().Save(ctx, a, []byte("held"))
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	called := false
	start := time.Now()
	err := s.Update(ctx, func(store.Tx) error { called = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update waiting for another Update returned %v, want context.DeadlineExceeded", err)
	}
	if called {
		t.Error("a second Update ran while the first was running")
	}
	if d := time.Since(start); d > testTimeout/2 {
		t.Errorf("Update waited %v after its context ended", d)
	}
	if err := release(); err != nil {
		t.Fatalf("holding Update: %v", err)
	}
	if got := loadRecord(t, s, a); string(got) != "held" {
		t.Errorf("record %q, want %q", got, "held")
	}
}

func workers(short, long int) int {
	if testing.Short() {
		return short
	}
	return long
}

// testConsumeOnce races many transactions to consume one prekey, as
// replays of one prekey message delivered at once would: exactly one may
// succeed, the others see ErrNotFound.
func testConsumeOnce(t *testing.T, s store.Store) {
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, newPreKeys(t, 1))
	})
	oneWins(t, s, workers(4, 16), store.ErrNotFound, "consumed the one prekey", func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.PreKeys().Load(ctx, 1); err != nil {
			return err
		}
		return tx.PreKeys().Remove(ctx, 1)
	})
}

// oneWins runs fn in n Updates started at once and checks that exactly one
// succeeds and that the others fail with an error wrapping lose.
func oneWins(t *testing.T, s store.Store, n int, lose error, what string, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Update(t.Context(), func(tx store.Tx) error { return fn(t.Context(), tx) })
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, lose):
			t.Errorf("a losing transaction got %v, want %v", err, lose)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent transactions %s", won, n, what)
	}
}

// testConsumeOnceMany has workers consume every prekey in different orders
// and counts each id's consumptions.
func testConsumeOnceMany(t *testing.T, s store.Store) {
	const prekeys = 40
	ids := make([]uint32, prekeys)
	for i := range ids {
		ids[i] = uint32(i) + 1
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, newPreKeys(t, ids...))
	})
	var consumed [prekeys + 1]atomic.Int32
	n := workers(2, 6)
	var wg sync.WaitGroup
	for w := range n {
		order := slices.Clone(ids)
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		wg.Go(func() {
			for _, id := range order {
				err := s.Update(t.Context(), func(tx store.Tx) error {
					return tx.PreKeys().Remove(t.Context(), id)
				})
				switch {
				case err == nil:
					consumed[id].Add(1)
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("Remove(%d): %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if c := consumed[id].Load(); c != 1 {
			t.Errorf("prekey %d was consumed %d times", id, c)
		}
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		if n, err := tx.PreKeys().Count(ctx); err != nil || n != 0 {
			t.Errorf("Count after consuming all: %d, %v", n, err)
		}
		return nil
	})
}

// testNoLostUpdates increments a counter kept in a session record from
// many goroutines at once: Updates that read, then write, must not overlap.
func testNoLostUpdates(t *testing.T, s store.Store) {
	a := store.Address{Name: "counter", DeviceID: 1}
	n, each := workers(3, 8), workers(5, 20)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range each {
				err := s.Update(t.Context(), func(tx store.Tx) error {
					rec, err := tx.Sessions().Load(t.Context(), a)
					var c uint64
					switch {
					case err == nil && len(rec) == 8:
						c = binary.BigEndian.Uint64(rec)
					case errors.Is(err, store.ErrNotFound):
					case err == nil:
						return fmt.Errorf("counter record of %d bytes", len(rec))
					default:
						return err
					}
					return tx.Sessions().Save(t.Context(), a, binary.BigEndian.AppendUint64(nil, c+1))
				})
				if err != nil {
					t.Errorf("increment: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	rec := loadRecord(t, s, a)
	if len(rec) != 8 || binary.BigEndian.Uint64(rec) != uint64(n*each) {
		t.Errorf("counter = %x after %d increments", rec, n*each)
	}
}

// testViewIsolation checks that a View sees none of the writes of an
// Update still running, and does not wait for it.
func testViewIsolation(t *testing.T, s store.Store) {
	a := store.Address{Name: "hal", DeviceID: 1}
	saveRecord(t, s, a, []byte("before"))
	k := newPublicKey(t)
	release := hold(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Identities().Save(ctx, a, k)
		return errors.Join(err,
			tx.Sessions().Save(ctx, a, []byte("after")),
			tx.PreKeys().Add(ctx, newPreKeys(t, 5)))
	})

	viewed := make(chan error, 1)
	go func() {
		viewed <- s.View(t.Context(), func(tx store.Tx) error {
			ctx := t.Context()
			if rec, err := tx.Sessions().Load(ctx, a); err != nil || string(rec) != "before" {
				return fmt.Errorf("session %q, %v; want the committed %q", rec, err, "before")
			}
			if _, err := tx.Identities().Load(ctx, a); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("an uncommitted identity is visible (%v)", err)
			}
			if n, err := tx.PreKeys().Count(ctx); err != nil || n != 0 {
				return fmt.Errorf("prekey count %d, %v; want 0", n, err)
			}
			return nil
		})
	}()
	select {
	case err := <-viewed:
		if err != nil {
			t.Errorf("View during an Update: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("View waited for a running Update")
	}
	if err := release(); err != nil {
		t.Fatalf("holding Update: %v", err)
	}
	if got := loadRecord(t, s, a); string(got) != "after" {
		t.Errorf("after the commit: %q", got)
	}
}

// testViewSnapshot checks that a View never sees half of a commit: two
// records written together are read equal.
func testViewSnapshot(t *testing.T, s store.Store) {
	a := store.Address{Name: "ivy", DeviceID: 1}
	b := store.Address{Name: "ivy", DeviceID: 2}
	commits, minViews := workers(20, 100), int64(workers(20, 100))
	var done atomic.Bool
	var views, readers atomic.Int64
	const readerCount = 2
	readers.Store(readerCount)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		// Keep writing until the readers have had their turns too, however
		// fast either side is, unless they gave up.
		deadline := time.Now().Add(testTimeout)
		for i := 0; i < commits || views.Load() < minViews && readers.Load() > 0 && time.Now().Before(deadline); i++ {
			v := binary.BigEndian.AppendUint32(nil, uint32(i))
			err := s.Update(t.Context(), func(tx store.Tx) error {
				return errors.Join(tx.Sessions().Save(t.Context(), a, v), tx.Sessions().Save(t.Context(), b, v))
			})
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
		}
	})
	for range readerCount {
		wg.Go(func() {
			defer readers.Add(-1)
			for !done.Load() {
				err := s.View(t.Context(), func(tx store.Tx) error {
					ra, errA := tx.Sessions().Load(t.Context(), a)
					rb, errB := tx.Sessions().Load(t.Context(), b)
					if errors.Is(errA, store.ErrNotFound) != errors.Is(errB, store.ErrNotFound) || !bytes.Equal(ra, rb) {
						return fmt.Errorf("one View read %x (%v) and %x (%v), written together", ra, errA, rb, errB)
					}
					if errA != nil && !errors.Is(errA, store.ErrNotFound) {
						return errA
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				views.Add(1)
			}
		})
	}
	wg.Wait()
	if views.Load() < minViews {
		t.Errorf("only %d Views completed while the writer ran", views.Load())
	}
}

// testErrorsHoldNoSecrets provokes errors around secret values and checks
// that no formatting of them shows the bytes, raw, hex or decimal.
func testErrorsHoldNoSecrets(t *testing.T, s store.Store) {
	pk := newPreKeys(t, 1)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, pk)
	})
	other := newPreKeys(t, 1)
	marker := []byte("SECRET-RATCHET-STATE\x00\x01\x02")
	a := store.Address{Name: "joe", DeviceID: 1}
	saveRecord(t, s, a, marker)
	secrets := [][]byte{pk[0].PrivateKey().Bytes(), other[0].PrivateKey().Bytes(), marker}

	var errs []error
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		errs = append(errs, tx.PreKeys().Add(ctx, other))
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		errs = append(errs,
			tx.Sessions().Save(ctx, a, marker),
			tx.PreKeys().Add(ctx, other))
		return nil
	})
	dead, cancel := context.WithCancel(t.Context())
	cancel()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		errs = append(errs, tx.Sessions().Save(dead, a, marker))
		return nil
	})
	checkNoSecrets(t, errs, secrets)
}

// checkNoSecrets fails t if an error of errs is nil or, formatted in any
// way, shows bytes of secrets, raw, hex or decimal.
func checkNoSecrets(t testing.TB, errs []error, secrets [][]byte) {
	t.Helper()
	for i, err := range errs {
		if err == nil {
			t.Errorf("error #%d is nil", i)
			continue
		}
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			msg := fmt.Sprintf(verb, err)
			for _, sec := range secrets {
				if strings.Contains(msg, string(sec)) || strings.Contains(strings.ToLower(msg), hex.EncodeToString(sec)) ||
					strings.Contains(msg, fmt.Sprint(sec)) {
					t.Errorf("error #%d printed with %s contains secret bytes: %s", i, verb, msg)
				}
			}
		}
	}
}
