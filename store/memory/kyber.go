package memory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/store"
)

// kyberKey is a stored Kyber prekey: the blob kyber.PreKey.MarshalBinary
// made, owned by the store, and what List reports without parsing it.
type kyberKey struct {
	blob       []byte
	lastResort bool
	used       bool
	created    int64 // Unix seconds
}

// kyberTriple is a (Kyber prekey, signed prekey, base key) use of a
// last-resort prekey; the base key is its 32-byte u-coordinate.
type kyberTriple struct {
	kyber, signed uint32
	base          publicKey
}

// sameBlob reports whether a and b are the same stored bytes (MarkUsed
// changes a prekey's flag and keeps its blob), not merely equal ones.
func sameBlob(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

var _ store.KyberTx = (*tx)(nil)

func (t *tx) KyberPreKeys() store.KyberPreKeys { return (*kyberTx)(t) }

// commitKyber applies the pending Kyber writes, wiping the blobs they
// drop. The caller holds the data lock.
func (t *tx) commitKyber() {
	d := &t.s.d
	for id, e := range t.kyber {
		if old, ok := d.kyber[id]; ok && (!e.ok || !sameBlob(old.blob, e.v.blob)) {
			clear(old.blob)
		}
		if e.ok {
			d.kyber[id] = e.v
		} else {
			delete(d.kyber, id)
		}
	}
	d.lastKyber = t.lastKyber
	for k, e := range t.kyberUsed {
		if e.ok {
			d.kyberUsed[k] = struct{}{}
		} else {
			delete(d.kyberUsed, k)
		}
	}
}

// rollbackKyber wipes the blobs that only the pending writes hold.
func (t *tx) rollbackKyber() {
	for id, e := range t.kyber {
		if old, ok := t.s.d.kyber[id]; e.ok && (!ok || !sameBlob(old.blob, e.v.blob)) {
			clear(e.v.blob)
		}
	}
}

// forgetTriples records the deletion of every used triple, committed or
// pending, for which match is true.
func (t *tx) forgetTriples(match func(kyberTriple) bool) {
	for k := range t.s.d.kyberUsed {
		if match(k) {
			set(&t.kyberUsed, k, entry[struct{}]{})
		}
	}
	for k, e := range t.kyberUsed {
		if e.ok && match(k) {
			t.kyberUsed[k] = entry[struct{}]{}
		}
	}
}

type kyberTx tx

func (t *kyberTx) Load(ctx context.Context, id uint32) (*kyber.PreKey, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	k, ok := lookup(t.kyber, t.s.d.kyber, id)
	if !ok {
		return nil, store.ErrNotFound
	}
	return kyber.ParsePreKey(k.blob)
}

func (t *kyberTx) Add(ctx context.Context, pks []*kyber.PreKey) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	err := checkBatch(pks, func(pk *kyber.PreKey) (uint32, bool) { return pk.ID(), pk.PrivateKey() != nil },
		func(id uint32) bool { _, ok := lookup(t.kyber, t.s.d.kyber, id); return ok })
	if err != nil {
		return err
	}
	for _, pk := range pks {
		blob, err := pk.MarshalBinary()
		if err != nil {
			return err // unreachable: MarshalBinary does not fail
		}
		k := kyberKey{blob: blob, lastResort: pk.LastResort(), created: pk.Created().Unix()}
		set(&t.kyber, pk.ID(), entry[kyberKey]{v: k, ok: true})
		t.lastKyber = max(t.lastKyber, pk.ID())
	}
	return nil
}

// remove records the deletion of prekey id, stored as k, and of its
// triples.
func (t *kyberTx) remove(id uint32, k kyberKey) {
	if old, ok := t.s.d.kyber[id]; !ok || !sameBlob(old.blob, k.blob) {
		// Added in this transaction: the blob is ours alone. A committed
		// one is wiped by commit, because a View may be reading it.
		clear(k.blob)
	}
	set(&t.kyber, id, entry[kyberKey]{})
	(*tx)(t).forgetTriples(func(tr kyberTriple) bool { return tr.kyber == id })
}

func (t *kyberTx) Remove(ctx context.Context, id uint32) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	k, ok := lookup(t.kyber, t.s.d.kyber, id)
	if !ok {
		return store.ErrNotFound
	}
	t.remove(id, k)
	return nil
}

// each calls f for every Kyber prekey the transaction sees.
func (t *kyberTx) each(f func(id uint32, k kyberKey)) {
	for id, k := range t.s.d.kyber {
		if _, pending := t.kyber[id]; !pending {
			f(id, k)
		}
	}
	for id, e := range t.kyber {
		if e.ok {
			f(id, e.v)
		}
	}
}

func (t *kyberTx) List(ctx context.Context) ([]store.KyberPreKeyInfo, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	out := []store.KyberPreKeyInfo{}
	t.each(func(id uint32, k kyberKey) {
		out = append(out, store.KyberPreKeyInfo{ID: id, LastResort: k.lastResort, Used: k.used, Created: time.Unix(k.created, 0)})
	})
	slices.SortFunc(out, func(a, b store.KyberPreKeyInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (t *kyberTx) Count(ctx context.Context) (oneTime, lastResort int, err error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return 0, 0, err
	}
	t.each(func(_ uint32, k kyberKey) {
		if k.lastResort {
			lastResort++
		} else {
			oneTime++
		}
	})
	return oneTime, lastResort, nil
}

func (t *kyberTx) LastID(ctx context.Context) (uint32, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return 0, err
	}
	return t.lastKyber, nil
}

func (t *kyberTx) MarkUsed(ctx context.Context, id, signedID uint32, baseKey *keys.PublicKey) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	if baseKey == nil {
		return errNilKey
	}
	k, ok := lookup(t.kyber, t.s.d.kyber, id)
	if !ok {
		return store.ErrNotFound
	}
	if !k.lastResort {
		t.remove(id, k)
		return nil
	}
	tr := kyberTriple{kyber: id, signed: signedID}
	copy(tr.base[:], baseKey.Bytes())
	if _, ok := lookup(t.kyberUsed, t.s.d.kyberUsed, tr); ok {
		return store.ErrReusedBaseKey
	}
	set(&t.kyberUsed, tr, entry[struct{}]{ok: true})
	if !k.used {
		k.used = true
		set(&t.kyber, id, entry[kyberKey]{v: k, ok: true})
	}
	return nil
}
