package sqlstore

import (
	"context"

	"github.com/ratchetkit/ratchetkit/senderkey"
	"github.com/ratchetkit/ratchetkit/store"
)

var _ store.SenderKeyTx = (*tx)(nil)

func (t *tx) SenderKeys() store.SenderKeys { return (*senderKeysTx)(t) }

type senderKeysTx tx

func (t *senderKeysTx) Load(ctx context.Context, sender store.Address, id senderkey.DistributionID) ([]byte, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	h, dev := key(sender)
	var rec []byte
	if err := (*tx)(t).scan(ctx, "load sender key", t.s.q.senderKeyLoad, []any{h, dev, id[:]}, &rec); err != nil {
		return nil, err
	}
	if rec == nil {
		rec = []byte{} // drivers scan an empty BLOB as nil; it is a record
	}
	return rec, nil
}

func (t *senderKeysTx) Save(ctx context.Context, sender store.Address, id senderkey.DistributionID, record []byte) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	if record == nil {
		record = []byte{} // nil would bind as NULL
	}
	h, dev := key(sender)
	_, err := (*tx)(t).exec(ctx, "save sender key", t.s.q.senderKeySave, h, dev, id[:], []byte(sender.Name), record)
	return err
}

func (t *senderKeysTx) Delete(ctx context.Context, sender store.Address, id senderkey.DistributionID) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	h, dev := key(sender)
	n, err := (*tx)(t).exec(ctx, "delete sender key", t.s.q.senderKeyDelete, h, dev, id[:])
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}
