package memory_test

import (
	"context"
	"testing"

	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestAllocations pins the cost of the session layer's hot path, an Update
// that loads and saves one record: the transaction, the copy Load returns
// and the copy Save keeps. The pending-write maps are reused.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ctx := context.Background()
	s := memory.New()
	a := store.Address{Name: "alice", DeviceID: 1}
	fn := func(tx store.Tx) error {
		r, err := tx.Sessions().Load(ctx, a)
		if err != nil {
			return err
		}
		return tx.Sessions().Save(ctx, a, r)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, a, make([]byte, 2048)) }); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}); n != 3 {
		t.Errorf("Update with Load and Save: %v allocations, want 3", n)
	}
	read := func(tx store.Tx) error {
		_, err := tx.Sessions().Load(ctx, a)
		return err
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := s.View(ctx, read); err != nil {
			t.Fatal(err)
		}
	}); n != 2 {
		t.Errorf("View with Load: %v allocations, want 2", n)
	}
}
