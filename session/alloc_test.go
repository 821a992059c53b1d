package session

import (
	"context"
	"testing"
)

// TestAllocations pins what a steady-state message costs in allocations.
// Loading and saving a record without skipped keys allocates nothing;
// through the session layer on the memory store, a message pair
// (Encrypt at one end, Decrypt at the other) makes 4, those of the bare
// ratchet (AES-GCM key schedules): the record stays parsed in the
// Manager's cache, and the write is the memory store's SwapSession,
// which copies the record into the stored buffer. (Before the cache and
// SwapSession, the pair made 16: 6 per message in the memory store's
// View and Update.)
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
	// allocate. The cached sessions hold the source too: drop them.
	a.m.keySource, b.m.keySource = nil, nil
	DropCache(a.m)
	DropCache(b.m)

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
	}); n > 4 {
		t.Errorf("a message pair through the session layer: %v allocations, want at most 4", n)
	}
}
