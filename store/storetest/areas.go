package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

// testLocal checks the local identity round trip, that stored and loaded
// key pairs are independent copies (the session layer wipes what it
// loads), and that a refused Save leaves the old identity.
func testLocal(t *testing.T, s store.Store) {
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Local().Load(ctx)
		wantNotFound(t, err, "Local.Load on an empty store")
		return nil
	})

	ik := newIdentity(t)
	raw := ik.PrivateKey().Bytes()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: 7})
	})
	// The store keeps its own copy: wiping the caller's pair changes nothing.
	ik.Clear()

	load := func() *store.LocalIdentity {
		t.Helper()
		var got *store.LocalIdentity
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			var err error
			got, err = tx.Local().Load(ctx)
			return err
		})
		return got
	}
	got := load()
	if !bytes.Equal(got.KeyPair.PrivateKey().Bytes(), raw) {
		t.Error("Local.Load returned a different private key")
	}
	if got.DeviceID != 7 {
		t.Errorf("Local.Load: DeviceID %d, want 7", got.DeviceID)
	}
	// A loaded pair belongs to the caller too.
	got.KeyPair.Clear()
	if !bytes.Equal(load().KeyPair.PrivateKey().Bytes(), raw) {
		t.Error("wiping a loaded key pair changed the stored one")
	}

	ik2 := newIdentity(t)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik2, DeviceID: math.MaxUint32})
	})
	got = load()
	if !got.KeyPair.PrivateKey().Equal(ik2.PrivateKey()) || !got.KeyPair.PublicKey().Equal(ik2.PublicKey()) {
		t.Error("Local.Save did not replace the key pair")
	}
	if got.DeviceID != math.MaxUint32 {
		t.Errorf("Local.Load: DeviceID %d, want %d", got.DeviceID, uint32(math.MaxUint32))
	}

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if tx.Local().Save(ctx, nil) == nil {
			t.Error("Local.Save(nil) succeeded")
		}
		if tx.Local().Save(ctx, &store.LocalIdentity{DeviceID: 1}) == nil {
			t.Error("Local.Save with a nil KeyPair succeeded")
		}
		return nil
	})
	if got := load(); !got.KeyPair.PrivateKey().Equal(ik2.PrivateKey()) || got.DeviceID != math.MaxUint32 {
		t.Error("a failed Local.Save changed the stored identity")
	}
}

// testIdentities checks what the trust policy relies on: changed is false
// on first use and for the same key, true for another key, per device, and
// a deleted address is a first use again.
func testIdentities(t *testing.T, s store.Store) {
	a1 := store.Address{Name: "alice", DeviceID: 1}
	a2 := store.Address{Name: "alice", DeviceID: 2}
	k1, k2 := newPublicKey(t), newPublicKey(t)

	save := func(a store.Address, k *keys.PublicKey, wantChanged bool) {
		t.Helper()
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			changed, err := tx.Identities().Save(ctx, a, k)
			if err != nil {
				return err
			}
			if changed != wantChanged {
				t.Errorf("Identities.Save(%v): changed = %v, want %v", a, changed, wantChanged)
			}
			return nil
		})
	}
	load := func(a store.Address, want *keys.PublicKey) {
		t.Helper()
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Identities().Load(ctx, a)
			if want == nil {
				wantNotFound(t, err, "Identities.Load of an unknown address")
				return nil
			}
			if err != nil {
				return err
			}
			if !got.Equal(want) {
				t.Errorf("Identities.Load(%v) returned another key", a)
			}
			return nil
		})
	}

	load(a1, nil)
	save(a1, k1, false) // first use
	save(a1, k1, false) // same key again
	load(a1, k1)
	load(a2, nil)
	save(a2, k2, false) // another device of the same name is another address
	save(a1, k2, true)  // changed
	load(a1, k2)
	load(a2, k2)
	save(a1, k1, true)
	load(a1, k1)

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Identities().Save(ctx, a1, nil); err == nil {
			t.Error("Identities.Save with a nil key succeeded")
		}
		return nil
	})
	load(a1, k1)
}

// testPreKeys checks one-time prekeys through their life: batch add,
// load, consume once, and a LastID that never goes down, so that fresh ids
// never collide with one a stale published bundle still names.
func testPreKeys(t *testing.T, s store.Store) {
	counts := func(wantCount int, wantLast uint32) {
		t.Helper()
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.PreKeys().Count(ctx)
			if err != nil {
				return err
			}
			last, err := tx.PreKeys().LastID(ctx)
			if err != nil {
				return err
			}
			if n != wantCount || last != wantLast {
				t.Errorf("Count, LastID = %d, %d; want %d, %d", n, last, wantCount, wantLast)
			}
			return nil
		})
	}

	counts(0, 0)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PreKeys().Load(ctx, 1)
		wantNotFound(t, err, "PreKeys.Load on an empty store")
		wantNotFound(t, tx.PreKeys().Remove(ctx, 1), "PreKeys.Remove on an empty store")
		return nil
	})

	pks := newPreKeys(t, 5, 1, 2, 3, 4)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PreKeys().Add(ctx, nil); err != nil {
			t.Errorf("PreKeys.Add of no prekeys: %v", err)
		}
		return tx.PreKeys().Add(ctx, pks)
	})
	counts(5, 5)
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, want := range pks {
			got, err := tx.PreKeys().Load(ctx, want.ID())
			if err != nil {
				return err
			}
			if got.ID() != want.ID() || !got.PrivateKey().Equal(want.PrivateKey()) {
				t.Errorf("PreKeys.Load(%d) returned another prekey", want.ID())
			}
		}
		return nil
	})

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Remove(ctx, 5)
	})
	counts(4, 5) // LastID remembers the removed highest id
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PreKeys().Load(ctx, 5)
		wantNotFound(t, err, "PreKeys.Load of a removed prekey")
		wantNotFound(t, tx.PreKeys().Remove(ctx, 5), "PreKeys.Remove of a removed prekey")
		return nil
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for id := uint32(1); id <= 4; id++ {
			if err := tx.PreKeys().Remove(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
	counts(0, 5)

	// A lower id may be added again once removed; LastID never goes down.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, newPreKeys(t, 2, 0))
	})
	counts(2, 5)

	// The extremes of the id space, and a large batch.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, newPreKeys(t, math.MaxUint32))
	})
	counts(3, math.MaxUint32)
	ids := make([]uint32, 1000)
	for i := range ids {
		ids[i] = 1000 + uint32(i)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, newPreKeys(t, ids...))
	})
	counts(1003, math.MaxUint32)
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range []uint32{0, 2, 1000, 1999, math.MaxUint32} {
			if _, err := tx.PreKeys().Load(ctx, id); err != nil {
				t.Errorf("PreKeys.Load(%d): %v", id, err)
			}
		}
		return nil
	})
}

// testPreKeysAddAllOrNothing checks that a refused Add has no effect of its
// own: overwriting a published prekey would break the session a peer
// starts with it.
func testPreKeysAddAllOrNothing(t *testing.T, s store.Store) {
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, newPreKeys(t, 1, 2))
	})
	// The failed Adds' errors are ignored and the transaction commits: Add
	// itself must have changed nothing.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		wantExists(t, tx.PreKeys().Add(ctx, newPreKeys(t, 3, 2)), "PreKeys.Add of a stored id")
		wantExists(t, tx.PreKeys().Add(ctx, newPreKeys(t, 7, 4, 7)), "PreKeys.Add with a repeated id")
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		n, err := tx.PreKeys().Count(ctx)
		if err != nil {
			return err
		}
		last, err := tx.PreKeys().LastID(ctx)
		if err != nil {
			return err
		}
		if n != 2 || last != 2 {
			t.Errorf("after failed Adds: Count, LastID = %d, %d; want 2, 2", n, last)
		}
		for _, id := range []uint32{3, 4, 7} {
			_, err := tx.PreKeys().Load(ctx, id)
			wantNotFound(t, err, fmt.Sprintf("PreKeys.Load(%d) after a failed Add", id))
		}
		return nil
	})

	// A prekey is never overwritten, not even by one with the same id that
	// was added earlier in the same transaction.
	pk := newPreKeys(t, 9)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PreKeys().Add(ctx, pk); err != nil {
			return err
		}
		wantExists(t, tx.PreKeys().Add(ctx, newPreKeys(t, 9)), "PreKeys.Add of an id added in the same transaction")
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.PreKeys().Load(ctx, 9)
		if err != nil {
			return err
		}
		if !got.PrivateKey().Equal(pk[0].PrivateKey()) {
			t.Error("a refused Add replaced a prekey")
		}
		return nil
	})
}

// testSignedPreKeys checks the signed prekey round trip (key, signature,
// creation time) and the order of List, which rotation reads to find the
// newest and the expired.
func testSignedPreKeys(t *testing.T, s store.Store) {
	ik := newIdentity(t)
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	spks := []*keys.SignedPreKey{
		newSignedPreKey(t, ik, 1, t0),
		newSignedPreKey(t, ik, 2, t0.Add(time.Hour)),
		newSignedPreKey(t, ik, 3, t0.Add(-time.Hour)),
		newSignedPreKey(t, ik, math.MaxUint32, t0), // same time as id 1: sorted after it
		newSignedPreKey(t, ik, 0, t0.Add(time.Hour)),
	}
	list := func(wantIDs ...uint32) {
		t.Helper()
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			infos, err := tx.SignedPreKeys().List(ctx)
			if err != nil {
				return err
			}
			var got []uint32
			for _, info := range infos {
				got = append(got, info.ID)
				for _, spk := range spks {
					if spk.ID() == info.ID && !info.Created.Equal(spk.Created()) {
						t.Errorf("List: prekey %d created %v, want %v", info.ID, info.Created, spk.Created())
					}
				}
			}
			if !slices.Equal(got, wantIDs) {
				t.Errorf("List: ids %v, want %v", got, wantIDs)
			}
			return nil
		})
	}

	list()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.SignedPreKeys().Load(ctx, 1)
		wantNotFound(t, err, "SignedPreKeys.Load on an empty store")
		wantNotFound(t, tx.SignedPreKeys().Remove(ctx, 1), "SignedPreKeys.Remove on an empty store")
		for _, spk := range spks {
			if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
				return err
			}
		}
		return nil
	})
	list(3, 1, math.MaxUint32, 0, 2)

	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, want := range spks {
			got, err := tx.SignedPreKeys().Load(ctx, want.ID())
			if err != nil {
				return err
			}
			if got.ID() != want.ID() || !got.PrivateKey().Equal(want.PrivateKey()) ||
				!bytes.Equal(got.Signature(), want.Signature()) || !got.Created().Equal(want.Created()) {
				t.Errorf("SignedPreKeys.Load(%d) returned another prekey", want.ID())
			}
			if err := got.Verify(ik.PublicKey()); err != nil {
				t.Errorf("SignedPreKeys.Load(%d): signature no longer verifies: %v", want.ID(), err)
			}
		}
		return nil
	})

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		wantExists(t, tx.SignedPreKeys().Add(ctx, newSignedPreKey(t, ik, 1, t0)), "SignedPreKeys.Add of a stored id")
		return tx.SignedPreKeys().Remove(ctx, 1)
	})
	list(3, math.MaxUint32, 0, 2)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.SignedPreKeys().Load(ctx, 1)
		wantNotFound(t, err, "SignedPreKeys.Load of a removed prekey")
		wantNotFound(t, tx.SignedPreKeys().Remove(ctx, 1), "SignedPreKeys.Remove of a removed prekey")
		if tx.SignedPreKeys().Add(ctx, nil) == nil {
			t.Error("SignedPreKeys.Add(nil) succeeded")
		}
		return nil
	})
	list(3, math.MaxUint32, 0, 2)
}

func loadRecord(t testing.TB, s store.Store, a store.Address) []byte {
	t.Helper()
	var rec []byte
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		rec, err = tx.Sessions().Load(ctx, a)
		if errors.Is(err, store.ErrNotFound) {
			rec, err = nil, nil
		}
		return err
	})
	return rec
}

func saveRecord(t testing.TB, s store.Store, a store.Address, rec []byte) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Sessions().Save(ctx, a, rec)
	})
}

// testSessions checks that records are stored as exact, independent copies
// of any length, zero included.
func testSessions(t *testing.T, s store.Store) {
	a := store.Address{Name: "bob", DeviceID: 3}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Sessions().Load(ctx, a)
		wantNotFound(t, err, "Sessions.Load on an empty store")
		wantNotFound(t, tx.Sessions().Delete(ctx, a), "Sessions.Delete on an empty store")
		return nil
	})

	rec := []byte("record one")
	saveRecord(t, s, a, rec)
	rec[0] = 'X' // Save kept a copy
	got := loadRecord(t, s, a)
	if string(got) != "record one" {
		t.Fatalf("Sessions.Load = %q, want %q", got, "record one")
	}
	got[0] = 'Y' // Load returned a copy
	if got := loadRecord(t, s, a); string(got) != "record one" {
		t.Errorf("changing a loaded record changed the stored one: %q", got)
	}

	saveRecord(t, s, a, []byte("record two, longer than the first"))
	if got := loadRecord(t, s, a); string(got) != "record two, longer than the first" {
		t.Errorf("Sessions.Save did not replace the record: %q", got)
	}
	saveRecord(t, s, a, []byte("3"))
	if got := loadRecord(t, s, a); string(got) != "3" {
		t.Errorf("Sessions.Save of a shorter record: %q", got)
	}

	// An empty record is a record.
	saveRecord(t, s, a, []byte{})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Sessions().Load(ctx, a)
		if err != nil || len(got) != 0 {
			t.Errorf("Sessions.Load of an empty record = %q, %v; want empty, nil", got, err)
		}
		return nil
	})

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Sessions().Delete(ctx, a)
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Sessions().Load(ctx, a)
		wantNotFound(t, err, "Sessions.Load of a deleted record")
		wantNotFound(t, tx.Sessions().Delete(ctx, a), "Sessions.Delete of a deleted record")
		return nil
	})
}

func devices(t testing.TB, s store.Store, name string) []uint32 {
	t.Helper()
	var out []uint32
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = tx.Sessions().Devices(ctx, name)
		return err
	})
	return out
}

// testDevices checks the device list over the whole uint32 range, sorted,
// and that names are matched exactly, not as prefixes or case-folded.
func testDevices(t *testing.T, s store.Store) {
	if got := devices(t, s, "carol"); len(got) != 0 {
		t.Errorf("Devices on an empty store = %v", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := []uint32{0, 1, 2, 1 << 31, math.MaxUint32}
	for len(want) < 300 {
		if d := rng.Uint32(); !slices.Contains(want, d) {
			want = append(want, d)
		}
	}
	order := slices.Clone(want)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, d := range order {
			if err := tx.Sessions().Save(ctx, store.Address{Name: "carol", DeviceID: d}, []byte{byte(d)}); err != nil {
				return err
			}
		}
		// Names that share a prefix or differ only in case are other names.
		for _, n := range []string{"caro", "carol2", "Carol", "carol\x00", ""} {
			if err := tx.Sessions().Save(ctx, store.Address{Name: n, DeviceID: 5}, []byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
	slices.Sort(want)
	if got := devices(t, s, "carol"); !slices.Equal(got, want) {
		t.Errorf("Devices(carol): got %d ids, want %d in increasing order", len(got), len(want))
	}
	if got := devices(t, s, ""); !slices.Equal(got, []uint32{5}) {
		t.Errorf(`Devices(""): %v, want [5]`, got)
	}

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Sessions().Delete(ctx, store.Address{Name: "carol", DeviceID: math.MaxUint32})
	})
	if got := devices(t, s, "carol"); !slices.Equal(got, want[:len(want)-1]) {
		t.Errorf("Devices(carol) after a Delete: %d ids, want %d", len(got), len(want)-1)
	}
	if got := devices(t, s, "dave"); len(got) != 0 {
		t.Errorf("Devices(dave) = %v, want none", got)
	}
}

// binaryNames are names a store must keep apart and return exactly.
var binaryNames = []string{
	"", "\x00", "\x00\x00", "a", "A", "a\x00", "a\x00b", "\xff\xfe\xfd", "\xc3\x28",
	"é", "e\u0301", "'; DROP TABLE sessions; --", "%", "_", "a%", "a_",
	strings.Repeat("n", 16<<10),
}

// testBinarySafe stores a record and an identity under each of
// binaryNames: NUL bytes, invalid UTF-8, unnormalized Unicode, SQL
// metacharacters and a name too long for a database index.
func testBinarySafe(t *testing.T, s store.Store) {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	record := func(i int) []byte {
		return append([]byte{byte(i)}, allBytes...)
	}
	key := make([]*keys.PublicKey, len(binaryNames))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, n := range binaryNames {
			a := store.Address{Name: n, DeviceID: uint32(i)}
			key[i] = newPublicKey(t)
			if _, err := tx.Identities().Save(ctx, a, key[i]); err != nil {
				return err
			}
			if err := tx.Sessions().Save(ctx, a, record(i)); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, n := range binaryNames {
			a := store.Address{Name: n, DeviceID: uint32(i)}
			got, err := tx.Sessions().Load(ctx, a)
			if err != nil {
				t.Errorf("Sessions.Load(name #%d): %v", i, err)
				continue
			}
			if !bytes.Equal(got, record(i)) {
				t.Errorf("Sessions.Load(name #%d) returned other bytes", i)
			}
			k, err := tx.Identities().Load(ctx, a)
			if err != nil {
				t.Errorf("Identities.Load(name #%d): %v", i, err)
			} else if !k.Equal(key[i]) {
				t.Errorf("Identities.Load(name #%d) returned another key", i)
			}
			devs, err := tx.Sessions().Devices(ctx, n)
			if err != nil {
				return err
			}
			if !slices.Equal(devs, []uint32{uint32(i)}) {
				t.Errorf("Devices(name #%d) = %v, want [%d]", i, devs, i)
			}
			// The same device id under every other name is another address.
			other := store.Address{Name: n + "x", DeviceID: uint32(i)}
			_, err = tx.Sessions().Load(ctx, other)
			wantNotFound(t, err, fmt.Sprintf("Sessions.Load(name #%d + x)", i))
		}
		return nil
	})
}

// testLargeRecord round-trips a 4 MiB record: a session record holds up to
// 41 ratchet states with their skipped message keys.
func testLargeRecord(t *testing.T, s store.Store) {
	const size = 4 << 20
	big := make([]byte, size)
	rand.NewChaCha8([32]byte{'l', 'a', 'r', 'g', 'e'}).Read(big)
	a := store.Address{Name: "big", DeviceID: 1}
	saveRecord(t, s, a, big)
	if got := loadRecord(t, s, a); !bytes.Equal(got, big) {
		t.Fatalf("a %d-byte record came back as %d other bytes", size, len(got))
	}
	// Replacing a large record with a small one leaves nothing of the old.
	saveRecord(t, s, a, []byte{1, 2, 3})
	if got := loadRecord(t, s, a); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("after replacing the large record: %d bytes", len(got))
	}
}
