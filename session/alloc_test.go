package session

import (
	"context"
	"testing"

	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestAllocations pins what a steady-state message costs in allocations.
// Loading and saving a record without skipped keys allocates nothing;
// through the session layer on the memory store, a message pair
// (Encrypt at one end, Decrypt at the other) makes 16: the 4 of the bare
// ratchet (AES-GCM key schedules), and 6 per message in the memory store
// (the View and Update transactions, two record copies out, one in, the
// trusted identity key). The session layer's own code adds none.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	ctx := context.Background()
	a, b := newFixedParty(t, "alice", Config{}), newFixedParty(t, "bob", Config{})
	if err := a.m.StartSession(ctx, b.addr, b.bundle(7)); err != nil {
		t.Fatal(err)
	}
	must(t)(b.m.Decrypt(ctx, a.addr, must(t)(a.m.Encrypt(ctx, b.addr, []byte("hi")))))
	must(t)(a.m.Decrypt(ctx, b.addr, must(t)(b.m.Encrypt(ctx, a.addr, []byte("hi")))))
	// Fresh random keys from here on: the fixture's key source would
	// allocate.
	a.m.keySource, b.m.keySource = nil, nil

	r := new(record)
	rec := a.record(t, b.addr)
	buf := make([]byte, 0, 2*len(rec))
	if n := testing.AllocsPerRun(100, func() {
		if err := r.parse(rec); err != nil {
			t.Fatal(err)
		}
		buf, _ = r.appendBinary(buf[:0])
	}); n != 0 {
		t.Errorf("record parse and marshal: %v allocations, want 0", n)
	}

	pt := make([]byte, 1024)
	msg := make([]byte, 0, 2048)
	out := make([]byte, 0, 2048)
	var err error
	if n := testing.AllocsPerRun(100, func() {
		if msg, err = a.m.AppendEncrypt(ctx, msg[:0], b.addr, pt); err != nil {
			t.Fatal(err)
		}
		if out, err = b.m.AppendDecrypt(ctx, out[:0], a.addr, msg); err != nil {
			t.Fatal(err)
		}
	}); n > 16 {
		t.Errorf("a message pair through the session layer: %v allocations, want at most 16", n)
	}

	// The share of the memory store, measured alone with the same calls.
	st := memory.New()
	addr := store.Address{Name: "x", DeviceID: 1}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, addr, rec) }); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { _, err := tx.Identities().Save(ctx, addr, a.ik.PublicKey()); return err }); err != nil {
		t.Fatal(err)
	}
	view := func(tx store.Tx) error {
		if _, err := tx.Sessions().Load(ctx, addr); err != nil {
			return err
		}
		_, err := tx.Identities().Load(ctx, addr)
		return err
	}
	update := func(tx store.Tx) error {
		if _, err := tx.Sessions().Load(ctx, addr); err != nil {
			return err
		}
		return tx.Sessions().Save(ctx, addr, rec)
	}
	if n := testing.AllocsPerRun(100, func() {
		st.View(ctx, view)
		st.Update(ctx, update)
	}); n != 6 {
		t.Logf("the memory store's share of one message: %v allocations (6 when this test was written)", n)
	}
}
