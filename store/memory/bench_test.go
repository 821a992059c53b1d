package memory_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
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

// kyberBenchKeys are base keys for the Kyber benchmarks; with the signed
// prekey id counting their rounds, every iteration uses a new triple.
func kyberBenchKeys(b *testing.B) []*keys.PublicKey {
	out := make([]*keys.PublicKey, 512)
	for i := range out {
		k, err := keys.GeneratePrivateKey()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = k.PublicKey()
	}
	return out
}

// BenchmarkKyberUse is the store's share of a PreKey message on a
// last-resort Kyber prekey: load the prekey in a View, then record its
// triple in an Update.
func BenchmarkKyberUse(b *testing.B) {
	ctx := context.Background()
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	pk, err := kyber.GeneratePreKey(ik, 1, true)
	if err != nil {
		b.Fatal(err)
	}
	s := memory.New()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.(store.KyberTx).KyberPreKeys().Add(ctx, []*kyber.PreKey{pk}) }); err != nil {
		b.Fatal(err)
	}
	bases := kyberBenchKeys(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		err := s.View(ctx, func(tx store.Tx) error {
			_, err := tx.(store.KyberTx).KyberPreKeys().Load(ctx, 1)
			return err
		})
		if err == nil {
			err = s.Update(ctx, func(tx store.Tx) error {
				return tx.(store.KyberTx).KyberPreKeys().MarkUsed(ctx, 1, uint32(i/len(bases)), bases[i%len(bases)])
			})
		}
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkKyberUseFloor is the least any in-memory store does for the
// same work: parse the stored blob (an ML-KEM key expansion, which no
// Load avoids) and insert the triple into a mutex-guarded set.
func BenchmarkKyberUseFloor(b *testing.B) {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	pk, err := kyber.GeneratePreKey(ik, 1, true)
	if err != nil {
		b.Fatal(err)
	}
	blob, _ := pk.MarshalBinary()
	type triple struct {
		kyber, signed uint32
		base          [32]byte
	}
	var mu sync.Mutex
	seen := map[triple]struct{}{}
	bases := kyberBenchKeys(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := kyber.ParsePreKey(blob); err != nil {
			b.Fatal(err)
		}
		tr := triple{kyber: 1, signed: uint32(i / len(bases))}
		copy(tr.base[:], bases[i%len(bases)].Bytes())
		mu.Lock()
		if _, ok := seen[tr]; ok {
			b.Fatal("repeated triple")
		}
		seen[tr] = struct{}{}
		mu.Unlock()
		i++
	}
}
