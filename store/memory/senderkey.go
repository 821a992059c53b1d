package memory

import (
	"context"

	"github.com/ratchetkit/ratchetkit/senderkey"
	"github.com/ratchetkit/ratchetkit/store"
)

// senderKeyID names a sender-key record.
type senderKeyID struct {
	sender store.Address
	id     senderkey.DistributionID
}

var _ store.SenderKeyTx = (*tx)(nil)

func (t *tx) SenderKeys() store.SenderKeys { return (*senderKeysTx)(t) }

// commitSenderKeys applies the pending sender-key writes, wiping the
// records they replace. The caller holds the data lock.
func (t *tx) commitSenderKeys() {
	d := &t.s.d
	for k, e := range t.senderKeys {
		clear(d.senderKeys[k])
		if e.ok {
			d.senderKeys[k] = e.v
		} else {
			delete(d.senderKeys, k)
		}
	}
}

// rollbackSenderKeys wipes the copies the pending writes hold.
func (t *tx) rollbackSenderKeys() {
	for _, e := range t.senderKeys {
		clear(e.v)
	}
}

type senderKeysTx tx

func (t *senderKeysTx) Load(ctx context.Context, sender store.Address, id senderkey.DistributionID) ([]byte, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	rec, ok := lookup(t.senderKeys, t.s.d.senderKeys, senderKeyID{sender, id})
	if !ok {
		return nil, store.ErrNotFound
	}
	return append(make([]byte, 0, len(rec)), rec...), nil
}

func (t *senderKeysTx) Save(ctx context.Context, sender store.Address, id senderkey.DistributionID, record []byte) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	k := senderKeyID{sender, id}
	if e, pending := t.senderKeys[k]; pending {
		clear(e.v)
	}
	set(&t.senderKeys, k, entry[[]byte]{v: append(make([]byte, 0, len(record)), record...), ok: true})
	return nil
}

func (t *senderKeysTx) Delete(ctx context.Context, sender store.Address, id senderkey.DistributionID) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	k := senderKeyID{sender, id}
	if _, ok := lookup(t.senderKeys, t.s.d.senderKeys, k); !ok {
		return store.ErrNotFound
	}
	if e, pending := t.senderKeys[k]; pending {
		clear(e.v)
	}
	set(&t.senderKeys, k, entry[[]byte]{})
	return nil
}
