package client

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strconv"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// The client keeps two SQLite files in its directory:
//
//   - keys.db, the ratchetkit store (package store/sqlstore): the identity
//     key pair, prekeys, peers' identity keys and sessions, and the sender
//     keys of groups (its SenderKeys area: this device's own chains and
//     the members' chains it received). Resetting the
//     identity deletes this file and starts a new one, which is the surest
//     way to leave nothing of the old identity behind.
//   - chat.db, the application's own state, below: the account (server,
//     name, device id, token), the outbox of encrypted envelopes not yet
//     stored by the server, envelopes held back until the user approves a
//     changed identity key, the highest server sequence number processed,
//     and the groups: their states and which member devices have this
//     device's current sender key.
//
// Neither file is encrypted: keys.db holds private keys and ratchet states,
// so a real client would encrypt it at rest (with a key from the operating
// system's keychain); the library leaves that to the application.
const chatSchema = `
CREATE TABLE IF NOT EXISTS account (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	server   TEXT NOT NULL,
	name     TEXT NOT NULL,
	token    TEXT NOT NULL,
	last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	recipient TEXT NOT NULL,
	body      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
	seq    INTEGER PRIMARY KEY,
	sender TEXT NOT NULL,
	body   BLOB NOT NULL
);
`

// heldSchema bounds the held table. held_total keeps, per sender, how
// many envelopes are held and their bytes, so that deciding about a new
// envelope reads one row instead of the sender's bodies, and what was left
// on the server over the bound: left_from and left_to are the first and
// last sequence numbers left there, left how many, and done_to, once the
// user approved, the last of them processed since. The index lets a
// sender's envelopes be listed without a scan. It runs after chatSchema,
// and also upgrades a chat.db made before the bound (version 0): the
// totals are computed once from the held rows there.
const heldSchema = `
CREATE INDEX IF NOT EXISTS held_sender ON held (sender, seq);
CREATE TABLE IF NOT EXISTS held_total (
	sender    TEXT PRIMARY KEY,
	count     INTEGER NOT NULL DEFAULT 0,
	bytes     INTEGER NOT NULL DEFAULT 0,
	left_from INTEGER NOT NULL DEFAULT 0,
	left_to   INTEGER NOT NULL DEFAULT 0,
	left      INTEGER NOT NULL DEFAULT 0,
	done_to   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
`

// devicesSchema (version 2) adds devices: the account's own device id,
// the device an outbox envelope is for and the one a held envelope came
// from (1 for what was there before), and the groups: each group's state
// as this client knows it, and the member devices that have this
// device's current sender key for it (see groups.go).
const devicesSchema = `
ALTER TABLE account ADD COLUMN device INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN device INTEGER NOT NULL DEFAULT 1;
ALTER TABLE held ADD COLUMN device INTEGER NOT NULL DEFAULT 1;
CREATE TABLE groups (
	id      BLOB PRIMARY KEY,
	name    TEXT NOT NULL UNIQUE,
	version INTEGER NOT NULL,
	members TEXT NOT NULL,
	member  INTEGER NOT NULL
);
CREATE TABLE sk_shared (
	grp    BLOB NOT NULL,
	user   TEXT NOT NULL,
	device INTEGER NOT NULL,
	PRIMARY KEY (grp, user, device)
) WITHOUT ROWID;
`

// chatVersion is chat.db's PRAGMA user_version once every schema is in.
const chatVersion = 2

func upgradeChat(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v >= chatVersion {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var steps []string
	if v < 1 {
		steps = append(steps, heldSchema,
			`INSERT OR REPLACE INTO held_total (sender, count, bytes)
			SELECT sender, count(*), sum(length(body)) FROM held GROUP BY sender`)
	}
	steps = append(steps, devicesSchema, `PRAGMA user_version = `+strconv.Itoa(chatVersion))
	for _, q := range steps {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// sqliteDSN is the connection string for a SQLite file: WAL so readers
// don't wait for the writer, FULL sync because a ratchet state that
// advanced must not be undone by a power loss once its message left (the
// next message would reuse its key and nonce), secure_delete so replaced
// states and used prekeys are overwritten, and immediate write locks.
func sqliteDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "secure_delete(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

func openSQLite(ctx context.Context, path, schema string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, err
	}
	if schema != "" {
		if _, err := db.ExecContext(ctx, schema); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

type account struct {
	server, name, token string
	device              uint32
	lastSeq             int64
}

var errNoAccount = errors.New("no account")

func loadAccount(ctx context.Context, db *sql.DB) (*account, error) {
	var a account
	err := db.QueryRowContext(ctx, `SELECT server, name, token, device, last_seq FROM account WHERE id = 1`).
		Scan(&a.server, &a.name, &a.token, &a.device, &a.lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoAccount
	}
	return &a, err
}

func saveAccount(ctx context.Context, db *sql.DB, a *account) error {
	_, err := db.ExecContext(ctx, `INSERT INTO account (id, server, name, token, device) VALUES (1, ?, ?, ?, ?)`, a.server, a.name, a.token, a.device)
	return err
}

func setLastSeq(ctx context.Context, db *sql.DB, seq int64) error {
	_, err := db.ExecContext(ctx, `UPDATE account SET last_seq = max(last_seq, ?) WHERE id = 1`, seq)
	return err
}

type outgoing struct {
	id   int64
	to   string
	dev  uint32
	body []byte
}

// addOutbox queues envelopes, in one transaction, and returns their ids
// in order.
func addOutbox(ctx context.Context, db *sql.DB, envs []envelope) ([]int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	ids := make([]int64, len(envs))
	for i, e := range envs {
		if err := tx.QueryRowContext(ctx, `INSERT INTO outbox (recipient, device, body) VALUES (?, ?, ?) RETURNING id`,
			e.to.Name, e.to.DeviceID, e.body).Scan(&ids[i]); err != nil {
			return nil, err
		}
	}
	return ids, tx.Commit()
}

func listOutbox(ctx context.Context, db *sql.DB) ([]outgoing, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, recipient, device, body FROM outbox ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outgoing
	for rows.Next() {
		var o outgoing
		if err := rows.Scan(&o.id, &o.to, &o.dev, &o.body); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

func deleteOutbox(ctx context.Context, db *sql.DB, id int64) error {
	_, err := db.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id)
	return err
}

type heldEnvelope struct {
	seq  int64
	from string
	dev  uint32
	body []byte
}

// heldTotal is what held_total says of one sender (zero if nothing).
type heldTotal struct {
	count, bytes           int64
	leftFrom, leftTo, left int64
	doneTo                 int64
}

const heldColumns = `count, bytes, left_from, left_to, left, done_to`

func scanHeldTotal(row *sql.Row) (heldTotal, error) {
	var t heldTotal
	err := row.Scan(&t.count, &t.bytes, &t.leftFrom, &t.leftTo, &t.left, &t.doneTo)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return t, err
}

// heldFor returns sender's totals: one primary-key lookup, whatever the
// number and size of the envelopes held.
func heldFor(ctx context.Context, db *sql.DB, sender string) (heldTotal, error) {
	return scanHeldTotal(db.QueryRowContext(ctx, `SELECT `+heldColumns+` FROM held_total WHERE sender = ?`, sender))
}

// hold keeps an envelope until the user approves its sender's identity
// key. Once the sender's held envelopes would exceed maxCount or maxBytes,
// this one and every later one of the sender are left on the server
// instead: hold returns false, having recorded the sequence number, and
// the envelope must not be acknowledged. (Leaving the later ones too keeps
// the sender's envelopes in order: a small one must not be held after a
// large one was left.) The check and the write are one transaction.
func hold(ctx context.Context, db *sql.DB, seq int64, from string, dev uint32, body []byte, maxCount int, maxBytes int64) (bool, heldTotal, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, heldTotal{}, err
	}
	defer tx.Rollback()
	t, err := scanHeldTotal(tx.QueryRowContext(ctx, `SELECT `+heldColumns+` FROM held_total WHERE sender = ?`, from))
	if err != nil {
		return false, t, err
	}
	if t.count == 0 {
		// A new identity change: what is left of an earlier one has come
		// in already, in order, before this envelope.
		t = heldTotal{}
	}
	size := int64(len(body))
	if t.leftFrom > 0 || t.count+1 > int64(maxCount) || t.bytes+size > maxBytes {
		if t.leftFrom > 0 && seq <= t.leftTo {
			return false, t, nil // left before, and sent again
		}
		if t.leftFrom == 0 {
			t.leftFrom = seq
		}
		t.leftTo = seq
		t.left++
		_, err = tx.ExecContext(ctx, `UPDATE held_total SET left_from = ?, left_to = ?, left = ? WHERE sender = ?`,
			t.leftFrom, t.leftTo, t.left, from)
		if err == nil {
			err = tx.Commit()
		}
		return false, t, err
	}
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO held (seq, sender, device, body) VALUES (?, ?, ?, ?)`, seq, from, dev, body)
	if err != nil {
		return false, t, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		// Held already (delivered again): nothing changes.
		return err == nil, t, err
	}
	t.count++
	t.bytes += size
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO held_total (sender, `+heldColumns+`) VALUES (?, ?, ?, 0, 0, 0, 0)`,
		from, t.count, t.bytes)
	if err == nil {
		err = tx.Commit()
	}
	return err == nil, t, err
}

// releasedTo records that sender's envelopes left on the server have been
// processed up to seq, after the user approved. Once the last of them is,
// the totals go: a repeat is then recognised by lastSeq, which has passed
// them all.
func releasedTo(ctx context.Context, db *sql.DB, sender string, seq int64) error {
	if _, err := db.ExecContext(ctx, `UPDATE held_total SET done_to = max(done_to, ?) WHERE sender = ?`, seq, sender); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, `DELETE FROM held_total WHERE sender = ? AND count = 0 AND done_to >= left_to`, sender)
	return err
}

func listHeld(ctx context.Context, db *sql.DB, from string) ([]heldEnvelope, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, sender, device, body FROM held WHERE sender = ? ORDER BY seq`, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []heldEnvelope
	for rows.Next() {
		var h heldEnvelope
		if err := rows.Scan(&h.seq, &h.from, &h.dev, &h.body); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// deleteHeld removes one held envelope of sender and takes it off the
// sender's totals. The totals go with the last one, unless envelopes were
// left on the server: their row then says which are still to come.
func deleteHeld(ctx context.Context, db *sql.DB, seq int64, sender string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var size int64
	err = tx.QueryRowContext(ctx, `DELETE FROM held WHERE seq = ? AND sender = ? RETURNING length(body)`, seq, sender).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE held_total SET count = count - 1, bytes = bytes - ? WHERE sender = ?`, size, sender); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM held_total WHERE sender = ? AND count <= 0 AND left_from = 0`, sender); err != nil {
		return err
	}
	return tx.Commit()
}

// deleteAllHeld forgets every held envelope and every total.
func deleteAllHeld(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM held`); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, `DELETE FROM held_total`)
	return err
}
