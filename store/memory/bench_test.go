package memory_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

const recordSize = 2 << 10 // a ratchet state with a few skipped keys

// BenchmarkLoadSave is the store's share of a decryption: load one ~2 KiB
// session record and save its successor, in one Update.
func BenchmarkLoadSave(b *testing.B) {
	ctx := context.Background()
	s := memory.New()
	a := store.Address{Name: "alice", DeviceID: 1}
	rec := make([]byte, recordSize)
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, a, rec) }); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(recordSize)
	b.ReportAllocs()
	for b.Loop() {
		err := s.Update(ctx, func(tx store.Tx) error {
			r, err := tx.Sessions().Load(ctx, a)
			if err != nil {
				return err
			}
			r[0]++
			return tx.Sessions().Save(ctx, a, r)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadSaveFloor is the least any in-memory store does for the
// same work: a mutex-guarded map, a copy out and a copy in.
func BenchmarkLoadSaveFloor(b *testing.B) {
	var mu sync.Mutex
	m := map[store.Address][]byte{}
	a := store.Address{Name: "alice", DeviceID: 1}
	m[a] = make([]byte, recordSize)
	b.SetBytes(recordSize)
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		r := append([]byte(nil), m[a]...)
		r[0]++
		m[a] = append([]byte(nil), r...)
		mu.Unlock()
	}
}
