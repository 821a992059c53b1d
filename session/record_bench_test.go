package session

import (
	"context"
	"testing"

	"github.com/ratchetkit/ratchetkit/store"
)

// BenchmarkRecord is one load and one save of a record with one
// established session: parse into a pooled record (the Session reused),
// marshal into a reused buffer.
func BenchmarkRecord(b *testing.B) {
	f := makeFixture(b)
	// One session: Alice's newest, answered or not, is enough.
	r := new(record)
	if err := r.parse(f.bobRecord); err != nil {
		b.Fatal(err)
	}
	r.trim(0)
	one, err := r.appendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2*len(one))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.parse(one); err != nil {
			b.Fatal(err)
		}
		if buf, err = r.appendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(one)), "record-bytes")
}

// BenchmarkLock is one uncontended lock and unlock of an address.
func BenchmarkLock(b *testing.B) {
	var ls addrLocks
	addr := store.Address{Name: "alice", DeviceID: 1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := ls.lock(ctx, addr)
		if err != nil {
			b.Fatal(err)
		}
		ls.unlock(addr, l, nil)
	}
}
