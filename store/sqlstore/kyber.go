package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/store"
)

var _ store.KyberTx = (*tx)(nil)

func (t *tx) KyberPreKeys() store.KyberPreKeys { return (*kyberTx)(t) }

type kyberTx tx

func (t *kyberTx) Load(ctx context.Context, id uint32) (*kyber.PreKey, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	var blob []byte
	if err := (*tx)(t).scan(ctx, "load Kyber prekey", t.s.q.kyberLoad, []any{int64(id)}, &blob); err != nil {
		return nil, err
	}
	defer clear(blob)
	pk, err := kyber.ParsePreKey(blob)
	if err != nil {
		return nil, errors.New("sqlstore: stored Kyber prekey does not parse")
	}
	return pk, nil
}

func (t *kyberTx) Add(ctx context.Context, pks []*kyber.PreKey) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	if len(pks) == 0 {
		return nil
	}
	last, err := checkBatch(pks, func(pk *kyber.PreKey) (uint32, bool) {
		return pk.ID(), pk.PrivateKey() != nil
	})
	if err != nil {
		return err
	}
	blobs := make([][]byte, len(pks))
	defer func() {
		for _, b := range blobs {
			clear(b)
		}
	}()
	err = (*tx)(t).insertAll(ctx, "add Kyber prekeys", len(pks), t.s.dialect.kyberInsert, func(i int, args []any) []any {
		pk := pks[i]
		blobs[i], _ = pk.MarshalBinary() // it does not fail
		return append(args, int64(pk.ID()), flag(pk.LastResort()), pk.Created().Unix(), blobs[i])
	})
	if err != nil {
		return err
	}
	_, err = (*tx)(t).exec(ctx, "add Kyber prekeys", t.s.q.kyberBumpLastID, int64(last), int64(last))
	return err
}

// flag is a boolean column's value.
func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// remove deletes prekey id and forgets its triples.
func (t *kyberTx) remove(ctx context.Context, id uint32) error {
	n, err := (*tx)(t).exec(ctx, "remove Kyber prekey", t.s.q.kyberRemove, int64(id))
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	if err == nil {
		_, err = (*tx)(t).exec(ctx, "remove Kyber prekey", t.s.q.kyberForget, int64(id))
	}
	return err
}

func (t *kyberTx) Remove(ctx context.Context, id uint32) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	return t.remove(ctx, id)
}

func (t *kyberTx) List(ctx context.Context) ([]store.KyberPreKeyInfo, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	const op = "list Kyber prekeys"
	rows, err := (*tx)(t).query(ctx, t.s.q.kyberList)
	if err != nil {
		return nil, t.s.fail(ctx, op, err)
	}
	defer rows.Close()
	out := []store.KyberPreKeyInfo{}
	for rows.Next() {
		var id, lastResort, used, created int64
		if err := rows.Scan(&id, &lastResort, &used, &created); err != nil {
			return nil, t.s.fail(ctx, op, err)
		}
		out = append(out, store.KyberPreKeyInfo{ID: uint32(id), LastResort: lastResort == 1, Used: used == 1, Created: time.Unix(created, 0)})
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.fail(ctx, op, err)
	}
	return out, nil
}

func (t *kyberTx) Count(ctx context.Context) (oneTime, lastResort int, err error) {
	if err := (*tx)(t).check(false); err != nil {
		return 0, 0, err
	}
	var one, last int64
	err = (*tx)(t).scan(ctx, "count Kyber prekeys", t.s.q.kyberCount, nil, &one, &last)
	return int(one), int(last), err
}

func (t *kyberTx) LastID(ctx context.Context) (uint32, error) {
	if err := (*tx)(t).check(false); err != nil {
		return 0, err
	}
	var n int64
	err := (*tx)(t).scan(ctx, "last Kyber prekey id", t.s.q.kyberLastID, nil, &n)
	return uint32(n), err
}

func (t *kyberTx) MarkUsed(ctx context.Context, id, signedID uint32, baseKey *keys.PublicKey) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	if baseKey == nil {
		return errNilKey
	}
	var lastResort int64
	if err := (*tx)(t).scan(ctx, "mark Kyber prekey used", t.s.q.kyberKind, []any{int64(id)}, &lastResort); err != nil {
		return err
	}
	if lastResort == 0 {
		// Of two transactions using it, the second finds no row to
		// delete (Updates are serialized, so it does not even find the
		// row above).
		return t.remove(ctx, id)
	}
	n, err := (*tx)(t).exec(ctx, "mark Kyber prekey used", t.s.q.kyberRecord, int64(id), int64(signedID), baseKey.Bytes())
	if err == nil && n == 0 {
		return store.ErrReusedBaseKey
	}
	if err == nil {
		_, err = (*tx)(t).exec(ctx, "mark Kyber prekey used", t.s.q.kyberSetUsed, int64(id))
	}
	return err
}
