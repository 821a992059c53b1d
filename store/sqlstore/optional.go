package sqlstore

import (
	"context"

	"github.com/ratchetkit/ratchetkit/store"
)

var (
	_ store.SessionsClearer = (*sessionsTx)(nil)
	_ store.PreKeyLister    = (*preKeysTx)(nil)
)

// DeleteAll implements [store.SessionsClearer].
func (t *sessionsTx) DeleteAll(ctx context.Context) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	_, err := (*tx)(t).exec(ctx, "delete all sessions", t.s.q.sessionDeleteAll)
	return err
}

// IDs implements [store.PreKeyLister].
func (t *preKeysTx) IDs(ctx context.Context) ([]uint32, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	ids, err := (*tx)(t).uint32s(ctx, "list prekeys", t.s.q.preKeyIDs)
	if ids == nil && err == nil {
		ids = []uint32{}
	}
	return ids, err
}
