package client

import (
	"context"
	"database/sql"
	"errors"
	"net/url"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// The client keeps two SQLite files in its directory:
//
//   - keys.db, the ratchetkit store (package store/sqlstore): the identity
//     key pair, prekeys, peers' identity keys and sessions. Resetting the
//     identity deletes this file and starts a new one, which is the surest
//     way to leave nothing of the old identity behind.
//   - chat.db, the application's own state, below: the account (server,
//     name, token), the outbox of encrypted envelopes not yet stored by the
//     server, envelopes held back until the user approves a changed
//     identity key, and the highest server sequence number processed.
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
	lastSeq             int64
}

var errNoAccount = errors.New("no account")

func loadAccount(ctx context.Context, db *sql.DB) (*account, error) {
	var a account
	err := db.QueryRowContext(ctx, `SELECT server, name, token, last_seq FROM account WHERE id = 1`).
		Scan(&a.server, &a.name, &a.token, &a.lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoAccount
	}
	return &a, err
}

func saveAccount(ctx context.Context, db *sql.DB, a *account) error {
	_, err := db.ExecContext(ctx, `INSERT INTO account (id, server, name, token) VALUES (1, ?, ?, ?)`, a.server, a.name, a.token)
	return err
}

func setLastSeq(ctx context.Context, db *sql.DB, seq int64) error {
	_, err := db.ExecContext(ctx, `UPDATE account SET last_seq = max(last_seq, ?) WHERE id = 1`, seq)
	return err
}

type outgoing struct {
	id   int64
	to   string
	body []byte
}

func addOutbox(ctx context.Context, db *sql.DB, to string, body []byte) (int64, error) {
	var id int64
	err := db.QueryRowContext(ctx, `INSERT INTO outbox (recipient, body) VALUES (?, ?) RETURNING id`, to, body).Scan(&id)
	return id, err
}

func listOutbox(ctx context.Context, db *sql.DB) ([]outgoing, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, recipient, body FROM outbox ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outgoing
	for rows.Next() {
		var o outgoing
		if err := rows.Scan(&o.id, &o.to, &o.body); err != nil {
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
	body []byte
}

func hold(ctx context.Context, db *sql.DB, seq int64, from string, body []byte) error {
	_, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO held (seq, sender, body) VALUES (?, ?, ?)`, seq, from, body)
	return err
}

func listHeld(ctx context.Context, db *sql.DB, from string) ([]heldEnvelope, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, sender, body FROM held WHERE sender = ? ORDER BY seq`, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []heldEnvelope
	for rows.Next() {
		var h heldEnvelope
		if err := rows.Scan(&h.seq, &h.from, &h.body); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func deleteHeld(ctx context.Context, db *sql.DB, seq int64) error {
	_, err := db.ExecContext(ctx, `DELETE FROM held WHERE seq = ?`, seq)
	return err
}
