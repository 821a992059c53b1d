package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/store"
)

// The Kyber prekey tests run on stores whose transactions implement
// store.KyberTx and skip on the others.

// kyberTests are the conformance properties of store.KyberPreKeys.
var kyberTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"KyberPreKeys", testKyberPreKeys},
	{"KyberPreKeysAddAllOrNothing", testKyberPreKeysAddAllOrNothing},
	{"KyberMarkUsed", testKyberMarkUsed},
	{"KyberTriplesForgotten", testKyberTriplesForgotten},
	{"KyberRollback", testKyberRollback},
	{"KyberViewIsReadOnly", testKyberViewIsReadOnly},
	{"KyberUseOnce", testKyberUseOnce},
	{"KyberErrorsHoldNoSecrets", testKyberErrorsHoldNoSecrets},
}

// kyberOf returns tx's Kyber prekeys, or skips t.
func kyberOf(t testing.TB, s store.Store) {
	t.Helper()
	var ok bool
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		_, ok = tx.(store.KyberTx)
		if _, err := store.KyberPreKeysOf(tx); ok != (err == nil) || (!ok && !errors.Is(err, store.ErrNoKyberPreKeys)) {
			t.Errorf("store.KyberPreKeysOf: %v, with store.KyberTx implemented: %t", err, ok)
		}
		return nil
	})
	if !ok {
		t.Skip("the store's transactions do not implement store.KyberTx")
	}
}

func kx(tx store.Tx) store.KyberPreKeys { return tx.(store.KyberTx).KyberPreKeys() }

// kyberIdentity signs every Kyber prekey of the suite.
var kyberIdentity = sync.OnceValue(func() *keys.IdentityKeyPair {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		panic(err)
	}
	return ik
})

// newKyberPreKeys returns Kyber prekeys of one kind with the given ids,
// created at whole seconds an hour apart.
func newKyberPreKeys(t testing.TB, lastResort bool, ids ...uint32) []*kyber.PreKey {
	t.Helper()
	out := make([]*kyber.PreKey, len(ids))
	for i, id := range ids {
		p, err := kyber.GeneratePreKey(kyberIdentity(), id, lastResort)
		if err != nil {
			t.Fatal(err)
		}
		out[i], err = kyber.NewPreKey(id, p.PrivateKey(), p.Signature(), time.Unix(1_700_000_000+3600*int64(i), 0), lastResort)
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// kyberState describes what a transaction sees of the Kyber area.
func kyberState(ctx context.Context, tx store.Tx) (string, error) {
	k := kx(tx)
	list, err := k.List(ctx)
	if err != nil {
		return "", err
	}
	one, last, err := k.Count(ctx)
	if err != nil {
		return "", err
	}
	lastID, err := k.LastID(ctx)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "one-time %d, last resort %d, last id %d:", one, last, lastID)
	for _, i := range list {
		fmt.Fprintf(&b, " %d(last resort %t, used %t, %d)", i.ID, i.LastResort, i.Used, i.Created.Unix())
	}
	return b.String(), nil
}

func wantKyberState(t testing.TB, s store.Store, want string) {
	t.Helper()
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := kyberState(ctx, tx)
		if err != nil {
			return err
		}
		if got != want {
			t.Errorf("Kyber prekeys:\n\tgot  %s\n\twant %s", got, want)
		}
		return nil
	})
}

// testKyberPreKeys checks the round trip of both kinds, List, Count and
// a LastID that never goes down, and that loaded prekeys are the
// caller's.
func testKyberPreKeys(t *testing.T, s store.Store) {
	kyberOf(t, s)
	wantKyberState(t, s, "one-time 0, last resort 0, last id 0:")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := kx(tx).Load(ctx, 1)
		wantNotFound(t, err, "KyberPreKeys.Load on an empty store")
		wantNotFound(t, kx(tx).Remove(ctx, 1), "KyberPreKeys.Remove on an empty store")
		if err := kx(tx).Add(ctx, nil); err != nil {
			t.Errorf("KyberPreKeys.Add of no prekeys: %v", err)
		}
		return nil
	})
	pks := append(newKyberPreKeys(t, false, 7, 2, math.MaxUint32), newKyberPreKeys(t, true, 0)...)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return kx(tx).Add(ctx, pks) })
	wantKyberState(t, s, "one-time 3, last resort 1, last id 4294967295:"+
		" 0(last resort true, used false, 1700000000)"+
		" 2(last resort false, used false, 1700003600)"+
		" 7(last resort false, used false, 1700000000)"+
		" 4294967295(last resort false, used false, 1700007200)")
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, want := range pks {
			got, err := kx(tx).Load(ctx, want.ID())
			if err != nil {
				return err
			}
			wb, _ := want.MarshalBinary()
			gb, _ := got.MarshalBinary()
			if !bytes.Equal(gb, wb) {
				t.Errorf("KyberPreKeys.Load(%d) returned another prekey", want.ID())
			}
			if err := got.Verify(kyberIdentity().PublicKey()); err != nil {
				t.Errorf("KyberPreKeys.Load(%d): %v", want.ID(), err)
			}
			// The caller owns what Load returned.
			got.PrivateKey().Clear()
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := kx(tx).Load(ctx, 7)
		if err != nil {
			return err
		}
		if !bytes.Equal(got.PrivateKey().Bytes(), pks[0].PrivateKey().Bytes()) {
			t.Error("clearing a loaded Kyber prekey changed the stored one")
		}
		return nil
	})

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := kx(tx).Remove(ctx, math.MaxUint32); err != nil {
			return err
		}
		_, err := kx(tx).Load(ctx, math.MaxUint32)
		wantNotFound(t, err, "KyberPreKeys.Load of a prekey removed in the transaction")
		return nil
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		wantNotFound(t, kx(tx).Remove(ctx, math.MaxUint32), "KyberPreKeys.Remove of a removed prekey")
		return kx(tx).Remove(ctx, 0)
	})
	// LastID remembers the removed highest id; a removed id may be added
	// again, of either kind.
	wantKyberState(t, s, "one-time 2, last resort 0, last id 4294967295:"+
		" 2(last resort false, used false, 1700003600)"+
		" 7(last resort false, used false, 1700000000)")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return kx(tx).Add(ctx, newKyberPreKeys(t, true, 0, math.MaxUint32))
	})
	wantKyberState(t, s, "one-time 2, last resort 2, last id 4294967295:"+
		" 0(last resort true, used false, 1700000000)"+
		" 2(last resort false, used false, 1700003600)"+
		" 7(last resort false, used false, 1700000000)"+
		" 4294967295(last resort true, used false, 1700003600)")

	// A batch as large as an upload.
	ids := make([]uint32, 300)
	for i := range ids {
		ids[i] = 1000 + uint32(i)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return kx(tx).Add(ctx, newKyberPreKeys(t, false, ids...))
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		one, last, err := kx(tx).Count(ctx)
		if err != nil {
			return err
		}
		if one != 302 || last != 2 {
			t.Errorf("Count = %d, %d; want 302, 2", one, last)
		}
		if _, err := kx(tx).Load(ctx, 1299); err != nil {
			t.Errorf("KyberPreKeys.Load(1299): %v", err)
		}
		return nil
	})
}

// testKyberPreKeysAddAllOrNothing checks that a refused Add changes
// nothing and never overwrites, whatever the kinds involved.
func testKyberPreKeysAddAllOrNothing(t *testing.T, s store.Store) {
	kyberOf(t, s)
	first := append(newKyberPreKeys(t, false, 1), newKyberPreKeys(t, true, 2)...)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return kx(tx).Add(ctx, first) })
	want := "one-time 1, last resort 1, last id 2:" +
		" 1(last resort false, used false, 1700000000)" +
		" 2(last resort true, used false, 1700000000)"
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		wantExists(t, kx(tx).Add(ctx, newKyberPreKeys(t, false, 9, 2)), "KyberPreKeys.Add of a stored last-resort id")
		wantExists(t, kx(tx).Add(ctx, newKyberPreKeys(t, true, 1)), "KyberPreKeys.Add of a stored one-time id")
		wantExists(t, kx(tx).Add(ctx, newKyberPreKeys(t, false, 8, 3, 8)), "KyberPreKeys.Add with a repeated id")
		if err := kx(tx).Add(ctx, []*kyber.PreKey{nil}); err == nil {
			t.Error("KyberPreKeys.Add of a nil prekey succeeded")
		}
		return nil
	})
	wantKyberState(t, s, want)
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range first {
			got, err := kx(tx).Load(ctx, p.ID())
			if err != nil {
				return err
			}
			if !got.PublicKey().Equal(p.PublicKey()) {
				t.Errorf("a refused Add replaced Kyber prekey %d", p.ID())
			}
		}
		return nil
	})
}

// markUsed runs MarkUsed in an Update of its own and returns its error.
func markUsed(t testing.TB, s store.Store, id, signedID uint32, base *keys.PublicKey) error {
	t.Helper()
	ctx := t.Context()
	return s.Update(ctx, func(tx store.Tx) error { return kx(tx).MarkUsed(ctx, id, signedID, base) })
}

// testKyberMarkUsed checks libsignal's bookkeeping: a one-time prekey is
// removed when used, a last-resort prekey is kept and marked used, and a
// repeated (Kyber id, signed id, base key) is refused with nothing changed.
func testKyberMarkUsed(t *testing.T, s store.Store) {
	kyberOf(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return kx(tx).Add(ctx, append(newKyberPreKeys(t, false, 1), newKyberPreKeys(t, true, 2, 3)...))
	})
	b1, b2 := newPublicKey(t), newPublicKey(t)

	if err := markUsed(t, s, 1, 5, b1); err != nil {
		t.Fatalf("MarkUsed of a one-time prekey: %v", err)
	}
	wantNotFound(t, markUsed(t, s, 1, 5, b2), "MarkUsed of a used one-time prekey")
	wantNotFound(t, markUsed(t, s, 4, 5, b1), "MarkUsed of an unknown prekey")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := kx(tx).Load(ctx, 1)
		wantNotFound(t, err, "KyberPreKeys.Load of a used one-time prekey")
		if kx(tx).MarkUsed(ctx, 2, 5, nil) == nil {
			t.Error("MarkUsed with a nil base key succeeded")
		}
		return nil
	})
	wantKyberState(t, s, "one-time 0, last resort 2, last id 3:"+
		" 2(last resort true, used false, 1700000000)"+
		" 3(last resort true, used false, 1700003600)")

	if err := markUsed(t, s, 2, 5, b1); err != nil {
		t.Fatalf("MarkUsed of a last-resort prekey: %v", err)
	}
	want := "one-time 0, last resort 2, last id 3:" +
		" 2(last resort true, used true, 1700000000)" +
		" 3(last resort true, used false, 1700003600)"
	wantKyberState(t, s, want)
	if err := markUsed(t, s, 2, 5, b1); !errors.Is(err, store.ErrReusedBaseKey) {
		t.Errorf("MarkUsed of a repeated triple: %v, want ErrReusedBaseKey", err)
	}
	// The same base key with another signed prekey or another Kyber
	// prekey, and another base key, are other triples.
	for _, tr := range []struct {
		id, signed uint32
		base       *keys.PublicKey
	}{{2, 6, b1}, {3, 5, b1}, {2, 5, b2}} {
		if err := markUsed(t, s, tr.id, tr.signed, tr.base); err != nil {
			t.Errorf("MarkUsed(%d, %d): %v", tr.id, tr.signed, err)
		}
		if err := markUsed(t, s, tr.id, tr.signed, tr.base); !errors.Is(err, store.ErrReusedBaseKey) {
			t.Errorf("MarkUsed(%d, %d) repeated: %v, want ErrReusedBaseKey", tr.id, tr.signed, err)
		}
	}
	// A refused MarkUsed inside a transaction that commits changes
	// nothing, and a repeat within one transaction is refused too.
	b3 := newPublicKey(t)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if !errors.Is(kx(tx).MarkUsed(ctx, 2, 5, b1), store.ErrReusedBaseKey) {
			t.Error("MarkUsed of a committed triple was not refused")
		}
		if err := kx(tx).MarkUsed(ctx, 3, 7, b3); err != nil {
			return err
		}
		if !errors.Is(kx(tx).MarkUsed(ctx, 3, 7, b3), store.ErrReusedBaseKey) {
			t.Error("MarkUsed of a triple recorded in the same transaction was not refused")
		}
		return nil
	})
	if err := markUsed(t, s, 3, 7, b3); !errors.Is(err, store.ErrReusedBaseKey) {
		t.Errorf("MarkUsed of a triple committed with a refused repeat: %v", err)
	}
	wantKyberState(t, s, "one-time 0, last resort 2, last id 3:"+
		" 2(last resort true, used true, 1700000000)"+
		" 3(last resort true, used true, 1700003600)")
}

// testKyberTriplesForgotten checks how the triples are bounded: removing
// the Kyber prekey or the signed prekey a triple names forgets it, and
// only those.
func testKyberTriplesForgotten(t *testing.T, s store.Store) {
	kyberOf(t, s)
	ik := newIdentity(t)
	t0 := time.Unix(1_700_000_000, 0)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range []uint32{5, 6} {
			if err := tx.SignedPreKeys().Add(ctx, newSignedPreKey(t, ik, id, t0)); err != nil {
				return err
			}
		}
		return kx(tx).Add(ctx, newKyberPreKeys(t, true, 1, 2))
	})
	b := newPublicKey(t)
	for _, tr := range [][2]uint32{{1, 5}, {1, 6}, {2, 5}, {2, 6}} {
		if err := markUsed(t, s, tr[0], tr[1], b); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(id, signed uint32, want bool) {
		t.Helper()
		// In a transaction that fails, so that an accepted triple is not
		// recorded.
		errProbe := errors.New("probe")
		err := s.Update(t.Context(), func(tx store.Tx) error {
			if err := kx(tx).MarkUsed(t.Context(), id, signed, b); err != nil {
				return err
			}
			return errProbe
		})
		if got := errors.Is(err, store.ErrReusedBaseKey); got != want || (!got && err != errProbe) {
			t.Errorf("triple (%d, %d): MarkUsed = %v, want refused %t", id, signed, err, want)
		}
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.SignedPreKeys().Remove(ctx, 5) })
	refused(1, 5, false)
	refused(2, 5, false)
	refused(1, 6, true)
	refused(2, 6, true)

	// A removed Kyber prekey added again under its id starts with no
	// triples; the other prekey keeps its own.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := kx(tx).Remove(ctx, 1); err != nil {
			return err
		}
		return kx(tx).Add(ctx, newKyberPreKeys(t, true, 1))
	})
	refused(1, 6, false)
	refused(2, 6, true)
	wantKyberState(t, s, "one-time 0, last resort 2, last id 2:"+
		" 1(last resort true, used false, 1700000000)"+
		" 2(last resort true, used true, 1700003600)")

	// Both within one transaction: a triple recorded and its signed
	// prekey removed before the commit.
	b2 := newPublicKey(t)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := kx(tx).MarkUsed(ctx, 2, 6, b2); err != nil {
			return err
		}
		return tx.SignedPreKeys().Remove(ctx, 6)
	})
	if err := markUsed(t, s, 2, 6, b2); err != nil {
		t.Errorf("a triple recorded and forgotten in one transaction: %v", err)
	}
}

// testKyberRollback checks that every Kyber write of a failed Update is
// discarded: adds, removals, a one-time prekey used and a triple recorded.
func testKyberRollback(t *testing.T, s store.Store) {
	kyberOf(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return kx(tx).Add(ctx, append(newKyberPreKeys(t, false, 1, 2), newKyberPreKeys(t, true, 3)...))
	})
	want := "one-time 2, last resort 1, last id 3:" +
		" 1(last resort false, used false, 1700000000)" +
		" 2(last resort false, used false, 1700003600)" +
		" 3(last resort true, used false, 1700000000)"
	b := newPublicKey(t)
	errFail := errors.New("fail")
	err := s.Update(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		k := kx(tx)
		if err := k.Add(ctx, newKyberPreKeys(t, true, 9)); err != nil {
			return err
		}
		if err := k.Remove(ctx, 2); err != nil {
			return err
		}
		if err := k.MarkUsed(ctx, 1, 4, b); err != nil {
			return err
		}
		if err := k.MarkUsed(ctx, 3, 4, b); err != nil {
			return err
		}
		if err := k.MarkUsed(ctx, 9, 4, b); err != nil {
			return err
		}
		return errFail
	})
	if err != errFail {
		t.Fatalf("Update: %v", err)
	}
	wantKyberState(t, s, want)
	if err := markUsed(t, s, 3, 4, b); err != nil {
		t.Errorf("MarkUsed of a triple whose recording was rolled back: %v", err)
	}
}

// testKyberViewIsReadOnly checks that every Kyber write fails in a View
// and changes nothing.
func testKyberViewIsReadOnly(t *testing.T, s store.Store) {
	kyberOf(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return kx(tx).Add(ctx, append(newKyberPreKeys(t, false, 1), newKyberPreKeys(t, true, 2)...))
	})
	b := newPublicKey(t)
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		k := kx(tx)
		for name, err := range map[string]error{
			"Add":                    k.Add(ctx, newKyberPreKeys(t, false, 3)),
			"Remove":                 k.Remove(ctx, 1),
			"MarkUsed (one-time)":    k.MarkUsed(ctx, 1, 1, b),
			"MarkUsed (last resort)": k.MarkUsed(ctx, 2, 1, b),
		} {
			if err == nil {
				t.Errorf("KyberPreKeys.%s in a View succeeded", name)
			}
		}
		return nil
	})
	wantKyberState(t, s, "one-time 1, last resort 1, last id 2:"+
		" 1(last resort false, used false, 1700000000)"+
		" 2(last resort true, used false, 1700000000)")
	if err := markUsed(t, s, 2, 1, b); err != nil {
		t.Errorf("MarkUsed after the View's: %v", err)
	}
}

// testKyberUseOnce races transactions that use one one-time prekey, and
// others that use one last-resort prekey with the same signed prekey and
// base key, as replays of one PreKey message delivered at once would:
// exactly one of each kind may succeed.
func testKyberUseOnce(t *testing.T, s store.Store) {
	kyberOf(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return kx(tx).Add(ctx, append(newKyberPreKeys(t, false, 1), newKyberPreKeys(t, true, 2)...))
	})
	b := newPublicKey(t)
	for _, tc := range []struct {
		id   uint32
		lose error
	}{{1, store.ErrNotFound}, {2, store.ErrReusedBaseKey}} {
		oneWins(t, s, workers(4, 12), tc.lose, fmt.Sprintf("used Kyber prekey %d", tc.id), func(ctx context.Context, tx store.Tx) error {
			if _, err := kx(tx).Load(ctx, tc.id); err != nil {
				return err
			}
			return kx(tx).MarkUsed(ctx, tc.id, 9, b)
		})
	}
}

// testKyberErrorsHoldNoSecrets provokes the Kyber area's errors around a
// stored prekey and one refused, in an Update, a View and under a done
// context, and checks that none shows a seed or a blob; the done
// context's MarkUsed changes nothing.
func testKyberErrorsHoldNoSecrets(t *testing.T, s store.Store) {
	kyberOf(t, s)
	pk := newKyberPreKeys(t, true, 1)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return kx(tx).Add(ctx, pk) })
	other := newKyberPreKeys(t, false, 1)
	var secrets [][]byte
	for _, p := range append(pk, other...) {
		blob, _ := p.MarshalBinary()
		secrets = append(secrets, p.PrivateKey().Bytes(), blob)
	}
	b := newPublicKey(t)
	var errs []error
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		errs = append(errs, kx(tx).Add(ctx, other))
		if err := kx(tx).MarkUsed(ctx, 1, 1, b); err != nil {
			return err
		}
		errs = append(errs, kx(tx).MarkUsed(ctx, 1, 1, b))
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		errs = append(errs, kx(tx).Add(ctx, other), kx(tx).MarkUsed(ctx, 1, 2, b))
		return nil
	})
	dead, cancel := context.WithCancel(t.Context())
	cancel()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		errs = append(errs, kx(tx).Add(dead, other), kx(tx).MarkUsed(dead, 1, 2, b))
		return nil
	})
	checkNoSecrets(t, errs, secrets)
	if err := markUsed(t, s, 1, 2, b); err != nil {
		t.Errorf("MarkUsed after one under a done context: %v", err)
	}
}
