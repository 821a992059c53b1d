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
	rows, err := (*tx)(t).query(ctx, t.s.q.preKeyIDs)
	if err != nil {
		return nil, t.s.fail(ctx, "list prekeys", err)
	}
	defer rows.Close()
	out := []uint32{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, t.s.fail(ctx, "list prekeys", err)
		}
		out = append(out, uint32(id))
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.fail(ctx, "list prekeys", err)
	}
	return out, nil
}
