package memory_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestSwapSession: the compare-and-swap writes only when both the record
// and the trusted key are the ones given, keeps its own copy, and
// changes nothing otherwise.
func TestSwapSession(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	a := store.Address{Name: "alice", DeviceID: 1}
	k1, _ := keys.GeneratePrivateKey()
	k2, _ := keys.GeneratePrivateKey()
	load := func() []byte {
		t.Helper()
		var rec []byte
		if err := s.View(ctx, func(tx store.Tx) error {
			var err error
			rec, err = tx.Sessions().Load(ctx, a)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	swap := func(old, rec []byte, k *keys.PublicKey, want bool) {
		t.Helper()
		ok, err := s.SwapSession(ctx, a, old, rec, k)
		if err != nil || ok != want {
			t.Fatalf("SwapSession(%q, %q): %v, %v; want %v", old, rec, ok, err, want)
		}
	}
	// No record stored yet.
	swap(nil, []byte("r1"), k1.PublicKey(), false)
	if err := s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Identities().Save(ctx, a, k1.PublicKey()); err != nil {
			return err
		}
		return tx.Sessions().Save(ctx, a, []byte("record one"))
	}); err != nil {
		t.Fatal(err)
	}
	swap([]byte("record two"), []byte("x"), k1.PublicKey(), false)
	swap([]byte("record one"), []byte("x"), k2.PublicKey(), false)
	if got := load(); string(got) != "record one" {
		t.Fatalf("a refused swap changed the record to %q", got)
	}
	rec := []byte("short")
	swap([]byte("record one"), rec, k1.PublicKey(), true)
	rec[0] = 'X' // the store keeps its own copy
	if got := load(); string(got) != "short" {
		t.Fatalf("record %q after the swap, want %q", got, "short")
	}
	long := bytes.Repeat([]byte("L"), 100)
	swap([]byte("short"), long, k1.PublicKey(), true)
	if got := load(); !bytes.Equal(got, long) {
		t.Fatalf("record %q after growing, want %q", got, long)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if ok, err := s.SwapSession(cctx, a, long, []byte("y"), k1.PublicKey()); ok || err == nil {
		t.Fatalf("SwapSession with a canceled context: %v, %v", ok, err)
	}
	if got := load(); !bytes.Equal(got, long) {
		t.Fatal("a canceled swap changed the record")
	}
}
