package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

type tx struct {
	s     *Store
	tx    *sql.Tx
	write bool
	done  bool
}

func (t *tx) Local() store.Local                 { return (*localTx)(t) }
func (t *tx) Identities() store.Identities       { return (*identitiesTx)(t) }
func (t *tx) PreKeys() store.PreKeys             { return (*preKeysTx)(t) }
func (t *tx) SignedPreKeys() store.SignedPreKeys { return (*signedPreKeysTx)(t) }
func (t *tx) Sessions() store.Sessions           { return (*sessionsTx)(t) }

func (t *tx) check(write bool) error {
	if t.done {
		return errDone
	}
	if write && !t.write {
		return errReadOnly
	}
	return nil
}

// exec runs a prepared statement and returns how many rows it changed.
func (t *tx) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	st, err := t.s.stmt(ctx, t.tx, query)
	if err != nil {
		return 0, t.s.fail(ctx, op, err)
	}
	res, err := st.ExecContext(ctx, args...)
	return t.result(ctx, op, res, err)
}

// execOnce runs a statement that is not prepared.
func (t *tx) execOnce(ctx context.Context, op, query string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, query, args...)
	return t.result(ctx, op, res, err)
}

func (t *tx) result(ctx context.Context, op string, res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, t.s.fail(ctx, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.s.fail(ctx, op, err)
	}
	return n, nil
}

// query runs a prepared query for many rows.
func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.s.stmt(ctx, t.tx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// scan runs a query for one row; no row is store.ErrNotFound.
func (t *tx) scan(ctx context.Context, op, query string, args []any, dst ...any) error {
	st, err := t.s.stmt(ctx, t.tx, query)
	if err == nil {
		err = st.QueryRowContext(ctx, args...).Scan(dst...)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return t.s.fail(ctx, op, err)
	}
	return nil
}

// key returns the primary-key arguments of an address: the SHA-256 of the
// name, which keeps index entries small whatever the name's length, and the
// device id.
func key(a store.Address) (nameHash []byte, deviceID int64) {
	h := sha256.Sum256([]byte(a.Name))
	return h[:], int64(a.DeviceID)
}

// privateKey builds a key from stored bytes and wipes them.
func privateKey(raw []byte) (*keys.PrivateKey, error) {
	defer clear(raw)
	k, err := keys.NewPrivateKey(raw)
	if err != nil {
		return nil, errors.New("sqlstore: stored private key has the wrong length")
	}
	return k, nil
}

type localTx tx

// The methods below implement the store interfaces, whose documentation
// states their contracts.

func (t *localTx) Load(ctx context.Context) (*store.LocalIdentity, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	var raw []byte
	var dev int64
	if err := (*tx)(t).scan(ctx, "load local identity", t.s.q.localLoad, nil, &raw, &dev); err != nil {
		return nil, err
	}
	kp, err := keys.NewIdentityKeyPair(raw) // copies raw, which is then wiped
	clear(raw)
	if err != nil {
		return nil, errors.New("sqlstore: stored identity key has the wrong length")
	}
	return &store.LocalIdentity{KeyPair: kp, DeviceID: uint32(dev)}, nil
}

func (t *localTx) Save(ctx context.Context, id *store.LocalIdentity) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	if id == nil || id.KeyPair == nil || id.KeyPair.PrivateKey() == nil {
		return errNilKey
	}
	var raw [32]byte
	copy(raw[:], id.KeyPair.PrivateKey().Bytes())
	defer clear(raw[:])
	_, err := (*tx)(t).exec(ctx, "save local identity", t.s.q.localSave, raw[:], int64(id.DeviceID))
	return err
}

type identitiesTx tx

func (t *identitiesTx) Load(ctx context.Context, addr store.Address) (*keys.PublicKey, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	h, dev := key(addr)
	var u []byte
	if err := (*tx)(t).scan(ctx, "load identity", t.s.q.identityLoad, []any{h, dev}, &u); err != nil {
		return nil, err
	}
	return keys.NewPublicKey(u)
}

func (t *identitiesTx) Save(ctx context.Context, addr store.Address, k *keys.PublicKey) (bool, error) {
	if err := (*tx)(t).check(true); err != nil {
		return false, err
	}
	if k == nil {
		return false, errNilKey
	}
	// Read, then write: safe because Updates are serialized, and it is
	// what reports changed on both dialects alike.
	h, dev := key(addr)
	u := k.Bytes()
	var old []byte
	err := (*tx)(t).scan(ctx, "load identity", t.s.q.identityLoad, []any{h, dev}, &old)
	switch {
	case err == nil:
		if string(old) == string(u) {
			return false, nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return false, err
	}
	if _, err := (*tx)(t).exec(ctx, "save identity", t.s.q.identitySave, h, dev, []byte(addr.Name), u); err != nil {
		return false, err
	}
	return old != nil, nil
}

type preKeysTx tx

func (t *preKeysTx) Load(ctx context.Context, id uint32) (*keys.OneTimePreKey, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	var raw []byte
	if err := (*tx)(t).scan(ctx, "load prekey", t.s.q.preKeyLoad, []any{int64(id)}, &raw); err != nil {
		return nil, err
	}
	k, err := privateKey(raw)
	if err != nil {
		return nil, err
	}
	return keys.NewOneTimePreKey(id, k), nil
}

func (t *preKeysTx) Add(ctx context.Context, pks []*keys.OneTimePreKey) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	if len(pks) == 0 {
		return nil
	}
	last, err := checkBatch(pks, func(pk *keys.OneTimePreKey) (uint32, bool) {
		return pk.ID(), pk.PrivateKey() != nil
	})
	if err != nil {
		return err
	}
	raws := make([][keys.PrivateKeySize]byte, min(len(pks), insertRows))
	defer clear(raws)
	err = (*tx)(t).insertAll(ctx, "add prekeys", len(pks), t.s.dialect.preKeyInsert, func(i int, args []any) []any {
		r := &raws[i%len(raws)] // rows of one statement never share a slot
		copy(r[:], pks[i].PrivateKey().Bytes())
		return append(args, int64(pks[i].ID()), r[:])
	})
	if err != nil {
		return err
	}
	_, err = (*tx)(t).exec(ctx, "add prekeys", t.s.q.preKeyBumpLastID, int64(last), int64(last))
	return err
}

// checkBatch refuses a batch of prekeys with a nil one (for which key
// reports false) or a repeated id, and returns the highest id. pks is not
// empty.
func checkBatch[P comparable](pks []P, key func(P) (id uint32, ok bool)) (last uint32, err error) {
	var zero P
	seen := make(map[uint32]struct{}, len(pks))
	for _, pk := range pks {
		if pk == zero {
			return 0, errNilKey
		}
		id, ok := key(pk)
		if !ok {
			return 0, errNilKey
		}
		if _, dup := seen[id]; dup {
			return 0, store.ErrExists
		}
		seen[id] = struct{}{}
		last = max(last, id)
	}
	return last, nil
}

// insertAll inserts n rows, insertRows at a time with the statements that
// query makes, each row's values appended by row, and returns ErrExists,
// with none of them inserted, if any row's id was stored. The inserts skip
// stored ids; if any was skipped, they are all rolled back to a
// savepoint, so that a refused Add changes nothing even if the caller
// goes on to commit. Skipping instead of failing matters on PostgreSQL,
// where a failed statement aborts the whole transaction. The callers
// refuse repeats within a batch first, so stored ids show as fewer rows
// inserted than given.
func (t *tx) insertAll(ctx context.Context, op string, n int, query func(rows int) string, row func(i int, args []any) []any) error {
	if _, err := t.exec(ctx, op, t.s.q.savepoint); err != nil {
		return err
	}
	var inserted int64
	var err error
	var args []any
	for first := 0; first < n && err == nil; first += insertRows {
		rows := min(insertRows, n-first)
		args = args[:0]
		for i := first; i < first+rows; i++ {
			args = row(i, args)
		}
		var m int64
		m, err = t.execOnce(ctx, op, query(rows), args...)
		inserted += m
	}
	if err == nil && inserted != int64(n) {
		err = store.ErrExists
	}
	if err != nil {
		if _, rerr := t.exec(ctx, op, t.s.q.rollbackToSavepoint); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if _, rerr := t.exec(ctx, op, t.s.q.releaseSavepoint); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

func (t *preKeysTx) Remove(ctx context.Context, id uint32) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	// The affected-row count decides which of two racing consumers wins:
	// the loser's DELETE finds the row gone.
	n, err := (*tx)(t).exec(ctx, "remove prekey", t.s.q.preKeyRemove, int64(id))
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

func (t *preKeysTx) Count(ctx context.Context) (int, error) {
	if err := (*tx)(t).check(false); err != nil {
		return 0, err
	}
	var n int64
	err := (*tx)(t).scan(ctx, "count prekeys", t.s.q.preKeyCount, nil, &n)
	return int(n), err
}

func (t *preKeysTx) LastID(ctx context.Context) (uint32, error) {
	if err := (*tx)(t).check(false); err != nil {
		return 0, err
	}
	var n int64
	err := (*tx)(t).scan(ctx, "last prekey id", t.s.q.preKeyLastID, nil, &n)
	return uint32(n), err
}

type signedPreKeysTx tx

func (t *signedPreKeysTx) Load(ctx context.Context, id uint32) (*keys.SignedPreKey, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	var created int64
	var raw, sig []byte
	if err := (*tx)(t).scan(ctx, "load signed prekey", t.s.q.signedLoad, []any{int64(id)}, &created, &raw, &sig); err != nil {
		return nil, err
	}
	k, err := privateKey(raw)
	if err != nil {
		return nil, err
	}
	return keys.NewSignedPreKey(id, k, sig, time.Unix(created, 0))
}

func (t *signedPreKeysTx) Add(ctx context.Context, spk *keys.SignedPreKey) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	if spk == nil || spk.PrivateKey() == nil {
		return errNilKey
	}
	var raw [32]byte
	copy(raw[:], spk.PrivateKey().Bytes())
	defer clear(raw[:])
	// ON CONFLICT DO NOTHING rather than a unique violation: on
	// PostgreSQL a failed statement would abort the caller's transaction.
	n, err := (*tx)(t).exec(ctx, "add signed prekey", t.s.q.signedAdd,
		int64(spk.ID()), spk.Created().Unix(), raw[:], spk.Signature())
	if err == nil && n == 0 {
		err = store.ErrExists
	}
	return err
}

func (t *signedPreKeysTx) List(ctx context.Context) ([]store.SignedPreKeyInfo, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	rows, err := (*tx)(t).query(ctx, t.s.q.signedList)
	if err != nil {
		return nil, t.s.fail(ctx, "list signed prekeys", err)
	}
	defer rows.Close()
	var out []store.SignedPreKeyInfo
	for rows.Next() {
		var id, created int64
		if err := rows.Scan(&id, &created); err != nil {
			return nil, t.s.fail(ctx, "list signed prekeys", err)
		}
		out = append(out, store.SignedPreKeyInfo{ID: uint32(id), Created: time.Unix(created, 0)})
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.fail(ctx, "list signed prekeys", err)
	}
	return out, nil
}

func (t *signedPreKeysTx) Remove(ctx context.Context, id uint32) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	n, err := (*tx)(t).exec(ctx, "remove signed prekey", t.s.q.signedRemove, int64(id))
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err == nil {
		// The used Kyber triples naming it can never match again.
		_, err = (*tx)(t).exec(ctx, "remove signed prekey", t.s.q.kyberForgetSigned, int64(id))
	}
	return err
}

type sessionsTx tx

func (t *sessionsTx) Load(ctx context.Context, addr store.Address) ([]byte, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	h, dev := key(addr)
	var rec []byte
	if err := (*tx)(t).scan(ctx, "load session", t.s.q.sessionLoad, []any{h, dev}, &rec); err != nil {
		return nil, err
	}
	if rec == nil {
		rec = []byte{} // drivers scan an empty BLOB as nil; it is a record
	}
	return rec, nil
}

func (t *sessionsTx) Save(ctx context.Context, addr store.Address, record []byte) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	if record == nil {
		record = []byte{} // nil would bind as NULL
	}
	h, dev := key(addr)
	_, err := (*tx)(t).exec(ctx, "save session", t.s.q.sessionSave, h, dev, []byte(addr.Name), record)
	return err
}

func (t *sessionsTx) Delete(ctx context.Context, addr store.Address) error {
	if err := (*tx)(t).check(true); err != nil {
		return err
	}
	h, dev := key(addr)
	n, err := (*tx)(t).exec(ctx, "delete session", t.s.q.sessionDelete, h, dev)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

func (t *sessionsTx) Devices(ctx context.Context, name string) ([]uint32, error) {
	if err := (*tx)(t).check(false); err != nil {
		return nil, err
	}
	h, _ := key(store.Address{Name: name})
	return (*tx)(t).uint32s(ctx, "list devices", t.s.q.sessionDevs, h)
}

// uint32s runs query and returns the one integer column of its rows;
// none is an empty result.
func (t *tx) uint32s(ctx context.Context, op, query string, args ...any) ([]uint32, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, t.s.fail(ctx, op, err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			return nil, t.s.fail(ctx, op, err)
		}
		out = append(out, uint32(d))
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.fail(ctx, op, err)
	}
	return out, nil
}
