package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/senderkey"
	"github.com/ratchetkit/ratchetkit/store"
)

// The sender-key tests run on stores whose transactions implement
// store.SenderKeyTx and skip on the others.

// senderKeyTests are the conformance properties of store.SenderKeys.
var senderKeyTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"SenderKeys", testSenderKeys},
	{"SenderKeysRollback", testSenderKeysRollback},
	{"SenderKeysViewIsReadOnly", testSenderKeysViewIsReadOnly},
	{"SenderKeysGroupDecrypt", testSenderKeysGroupDecrypt},
	{"SenderKeysScript", testSenderKeysScript},
}

// senderKeysOf skips t unless s's transactions implement store.SenderKeyTx.
func senderKeysOf(t testing.TB, s store.Store) {
	t.Helper()
	var ok bool
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		_, ok = tx.(store.SenderKeyTx)
		if _, err := store.SenderKeysOf(tx); ok != (err == nil) || (!ok && !errors.Is(err, store.ErrNoSenderKeys)) {
			t.Errorf("store.SenderKeysOf: %v, with store.SenderKeyTx implemented: %t", err, ok)
		}
		return nil
	})
	if !ok {
		t.Skip("the store's transactions do not implement store.SenderKeyTx")
	}
}

func skx(tx store.Tx) store.SenderKeys { return tx.(store.SenderKeyTx).SenderKeys() }

var (
	skAlice  = store.Address{Name: "alice", DeviceID: 1}
	skAlice2 = store.Address{Name: "alice", DeviceID: 2}
	skBob    = store.Address{Name: "bob\x00\xff", DeviceID: 1}
	skGroup1 = senderkey.DistributionID{1}
	skGroup2 = senderkey.DistributionID{2}
)

func loadSenderKey(t testing.TB, s store.Store, a store.Address, id senderkey.DistributionID) ([]byte, error) {
	t.Helper()
	var rec []byte
	var err error
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		rec, err = skx(tx).Load(ctx, a, id)
		return nil
	})
	return rec, err
}

// testSenderKeys: records by (address, distribution id) apart, copies in
// and out, replace, delete, not found.
func testSenderKeys(t *testing.T, s store.Store) {
	senderKeysOf(t, s)
	if _, err := loadSenderKey(t, s, skAlice, skGroup1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of nothing: %v", err)
	}
	in := map[[2]int][]byte{}
	addrs := []store.Address{skAlice, skAlice2, skBob}
	groups := []senderkey.DistributionID{skGroup1, skGroup2}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, a := range addrs {
			for j, g := range groups {
				rec := bytes.Repeat([]byte{byte(16*i + j), 0}, 100+i+j)
				in[[2]int{i, j}] = bytes.Clone(rec)
				if err := skx(tx).Save(ctx, a, g, rec); err != nil {
					return err
				}
				clear(rec) // the store keeps its own copy
			}
		}
		got, err := skx(tx).Load(ctx, skBob, skGroup2)
		if err != nil || !bytes.Equal(got, in[[2]int{2, 1}]) {
			t.Errorf("read your write: %v", err)
		}
		return nil
	})
	for i, a := range addrs {
		for j, g := range groups {
			got, err := loadSenderKey(t, s, a, g)
			if err != nil || !bytes.Equal(got, in[[2]int{i, j}]) {
				t.Fatalf("Load(%v, %d): %v", a, j, err)
			}
			clear(got)
		}
	}
	if got, _ := loadSenderKey(t, s, skAlice, skGroup1); !bytes.Equal(got, in[[2]int{0, 0}]) {
		t.Fatal("a caller's change to a loaded record reached the store")
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := skx(tx).Save(ctx, skAlice, skGroup1, []byte("replaced")); err != nil {
			return err
		}
		return skx(tx).Delete(ctx, skAlice2, skGroup2)
	})
	if got, err := loadSenderKey(t, s, skAlice, skGroup1); err != nil || string(got) != "replaced" {
		t.Fatalf("replaced record: %q, %v", got, err)
	}
	if _, err := loadSenderKey(t, s, skAlice2, skGroup2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted record: %v", err)
	}
	if got, err := loadSenderKey(t, s, skAlice2, skGroup1); err != nil || !bytes.Equal(got, in[[2]int{1, 0}]) {
		t.Fatalf("a neighbour of the deleted record: %v", err)
	}
	err := s.Update(t.Context(), func(tx store.Tx) error {
		return skx(tx).Delete(t.Context(), skAlice2, skGroup2)
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of nothing: %v", err)
	}
}

func testSenderKeysRollback(t *testing.T, s store.Store) {
	senderKeysOf(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return skx(tx).Save(ctx, skAlice, skGroup1, []byte("kept"))
	})
	boom := errors.New("boom")
	err := s.Update(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		if err := skx(tx).Save(ctx, skAlice, skGroup1, []byte("dropped")); err != nil {
			return err
		}
		if err := skx(tx).Save(ctx, skBob, skGroup2, []byte("dropped")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got, err := loadSenderKey(t, s, skAlice, skGroup1); err != nil || string(got) != "kept" {
		t.Fatalf("after a rollback: %q, %v", got, err)
	}
	if _, err := loadSenderKey(t, s, skBob, skGroup2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a rolled-back Save: %v", err)
	}
}

func testSenderKeysViewIsReadOnly(t *testing.T, s store.Store) {
	senderKeysOf(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return skx(tx).Save(ctx, skAlice, skGroup1, []byte("kept"))
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		if skx(tx).Save(ctx, skAlice, skGroup1, []byte("x")) == nil || skx(tx).Delete(ctx, skAlice, skGroup1) == nil {
			t.Error("a write in a View succeeded")
		}
		return nil
	})
	if got, err := loadSenderKey(t, s, skAlice, skGroup1); err != nil || string(got) != "kept" {
		t.Fatalf("after the View: %q, %v", got, err)
	}
}

// testSenderKeysGroupDecrypt: the pattern a group member uses, Load,
// Decrypt and Save in one Update, with a refused message saving nothing.
func testSenderKeysGroupDecrypt(t *testing.T, s store.Store) {
	senderKeysOf(t, s)
	var own senderkey.Record
	dm, err := own.DistributionMessage(skGroup1)
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var r senderkey.Record
		r.Process(dm)
		return skx(tx).Save(ctx, skAlice, skGroup1, r.Bytes())
	})
	decrypt := func(msg []byte) ([]byte, error) {
		var pt []byte
		err := s.Update(t.Context(), func(tx store.Tx) error {
			ctx := t.Context()
			b, err := skx(tx).Load(ctx, skAlice, skGroup1)
			if err != nil {
				return err
			}
			r, err := senderkey.ParseRecord(b)
			if err != nil {
				return err
			}
			if pt, err = r.Decrypt(msg); err != nil {
				return err
			}
			return skx(tx).Save(ctx, skAlice, skGroup1, r.Bytes())
		})
		return pt, err
	}
	var msgs [][]byte
	for _, p := range []string{"one", "two", "three"} {
		m, err := own.Encrypt(skGroup1, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	for i, want := range []string{"three", "one"} {
		if pt, err := decrypt(msgs[2-2*i]); err != nil || string(pt) != want {
			t.Fatalf("%s: %v", want, err)
		}
	}
	before, _ := loadSenderKey(t, s, skAlice, skGroup1)
	if _, err := decrypt(msgs[0]); !errors.Is(err, senderkey.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if after, _ := loadSenderKey(t, s, skAlice, skGroup1); !bytes.Equal(before, after) {
		t.Fatal("a refused message changed the stored record")
	}
	if pt, err := decrypt(msgs[1]); err != nil || string(pt) != "two" {
		t.Fatalf("two: %v", err)
	}
}
