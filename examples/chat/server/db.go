package server

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/x3dh"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// The server's state is three tables, and a fourth of invite codes. Public
// keys are stored as their 33-byte encodings; envelopes as the opaque bytes
// clients sent. Tokens and invite codes are stored hashed, so a copy of the
// database does not let anyone log in or register.
// An identity key belongs to one name at most (see checkIdentityFree); a
// database from before that rule that has one key under two names fails to
// open, at the unique index, until one of them is reset or removed.
const schema = `
CREATE TABLE IF NOT EXISTS users (
	name         TEXT PRIMARY KEY,
	token_hash   BLOB NOT NULL UNIQUE,
	identity_key BLOB NOT NULL,
	spk_id       INTEGER NOT NULL,
	spk          BLOB NOT NULL,
	spk_sig      BLOB NOT NULL,
	created      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS prekeys (
	user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id   INTEGER NOT NULL,
	key  BLOB NOT NULL,
	PRIMARY KEY (user, id)
);
CREATE TABLE IF NOT EXISTS queue (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	recipient TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	sender    TEXT NOT NULL,
	body      BLOB NOT NULL,
	created   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_recipient ON queue (recipient, seq);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_identity_key ON users (identity_key);
CREATE TABLE IF NOT EXISTS invites (
	code_hash BLOB PRIMARY KEY,
	used_by   TEXT
);
`

// openDB opens (creating if needed) the SQLite database at path.
//
// WAL lets the relay read the queue while a write commits. synchronous
// NORMAL survives a crash of the process but may lose the last commits on
// power loss: for a relay that means a message acknowledged as stored is
// lost, which a client sees as a gap in the conversation (the ratchet skips
// over it).
//
// secure_delete makes SQLite overwrite deleted rows with zeros, but in WAL
// mode it writes the zeroed page as a new frame and leaves the frames with
// the old content in the -wal file until a checkpoint copies the pages back
// and the log is reset; even then the old frames stay on disk past the end
// of what is rewritten. So deletes are followed by checkpoint, which runs
// wal_checkpoint(TRUNCATE) at a bounded cadence: a delivered envelope or a
// handed-out prekey lasts in the files for at most one checkpoint interval.
//
// The database and its -wal and -shm files are made readable by their owner
// only: SQLite creates the latter two with the main file's permissions, so
// the main file is created 0600 before SQLite opens it, and an existing
// one with wider permissions is narrowed.
//
// All access goes through one connection: SQLite has one writer anyway, and
// a single connection makes every statement see the previous one's effect
// without retries on SQLITE_BUSY.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	if err := restrictFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "secure_delete(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	return db, nil
}

// restrictFiles creates the database file with mode 0600 if it is missing,
// and takes group and other permissions off it and off its -wal and -shm
// files if they exist.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleted records that a row with content worth wiping (an envelope, a
// prekey) was deleted since the last checkpoint.
func (s *Server) deleted() { s.dirty.Store(true) }

// checkpointLoop checkpoints after deletes, every CheckpointInterval at
// most, until the server closes.
func (s *Server) checkpointLoop() {
	defer close(s.checkpointDone)
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.checkpoint(s.ctx)
		}
	}
}

// checkpoint copies the WAL into the database and truncates it to zero
// bytes, if anything was deleted since the last time. A checkpoint that
// could not finish (another process was reading the database) leaves the
// flag set, so the next tick tries again.
func (s *Server) checkpoint(ctx context.Context) {
	if !s.dirty.Swap(false) {
		return
	}
	var busy, logFrames, done int
	err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done)
	if err != nil || busy != 0 {
		s.dirty.Store(true)
		if err != nil && ctx.Err() == nil {
			s.log.Error("checkpoint", "err", err)
		}
	}
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// errNameTaken, errUnknownUser and errPreKeyExists report conflicts the
// handlers turn into API errors.
var (
	errNameTaken    = errors.New("name taken")
	errUnknownUser  = errors.New("unknown user")
	errPreKeyExists = errors.New("prekey id exists")
	errTooMany      = errors.New("too many")
	errKeyTaken     = errors.New("identity key registered to another name")
)

// userByToken returns the user whose token hashes to the stored hash.
// The hash is of a 256-bit random token, so looking it up by value leaks
// nothing a timing attacker could use.
func (s *Server) userByToken(ctx context.Context, token string) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, `SELECT name FROM users WHERE token_hash = ?`, hashToken(token)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errUnknownUser
	}
	return name, err
}

func (s *Server) userExists(ctx context.Context, name string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE name = ?`, name).Scan(&n)
	return n > 0, err
}

// keySet is a validated set of public keys to store.
type keySet struct {
	identityKey []byte
	spk         api.SignedPreKey
	opks        []api.PreKey
}

func (s *Server) register(ctx context.Context, name, token, invite string, ks *keySet) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errNameTaken
		}
		if err := checkIdentityFree(ctx, tx, name, ks.identityKey); err != nil {
			return err
		}
		if err := s.useInvite(ctx, tx, name, invite); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO users (name, token_hash, identity_key, spk_id, spk, spk_sig, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			name, hashToken(token), ks.identityKey, ks.spk.ID, ks.spk.Key, ks.spk.Signature, s.now().Unix()); err != nil {
			return err
		}
		return s.addPreKeysTx(ctx, tx, name, ks.opks)
	})
}

// replaceKeys swaps every key of name for those of ks: the old one-time
// prekeys belong to the old identity and go with it.
func (s *Server) replaceKeys(ctx context.Context, name string, ks *keySet) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkIdentityFree(ctx, tx, name, ks.identityKey); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE users SET identity_key = ?, spk_id = ?, spk = ?, spk_sig = ? WHERE name = ?`,
			ks.identityKey, ks.spk.ID, ks.spk.Key, ks.spk.Signature, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM prekeys WHERE user = ?`, name); err != nil {
			return err
		}
		s.deleted()
		return s.addPreKeysTx(ctx, tx, name, ks.opks)
	})
}

// checkIdentityFree fails with errKeyTaken if a user other than name has
// identity key ik. Two names with one identity key are an unknown
// key-share: whoever registered "alice2" with alice's public keys (all of
// them public, so copying needs no secret) has contacts run X3DH with
// alice's keys, and alice receives, and may believe, messages meant for
// "alice2". The unique index on identity_key enforces the same rule; this
// check turns it into an error the handlers can name.
func checkIdentityFree(ctx context.Context, tx *sql.Tx, name string, ik []byte) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE identity_key = ? AND name != ?`, ik, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return errKeyTaken
	}
	return nil
}

func (s *Server) identityKey(ctx context.Context, name string) ([]byte, error) {
	var ik []byte
	err := s.db.QueryRowContext(ctx, `SELECT identity_key FROM users WHERE name = ?`, name).Scan(&ik)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnknownUser
	}
	return ik, err
}

// storedBundle returns name's identity and signed prekeys as a bundle
// without a one-time prekey, to check new one-time prekeys against.
func (s *Server) storedBundle(ctx context.Context, name string) (*x3dh.Bundle, error) {
	b := api.Bundle{Name: name}
	err := s.db.QueryRowContext(ctx, `SELECT identity_key, spk_id, spk, spk_sig FROM users WHERE name = ?`, name).
		Scan(&b.IdentityKey, &b.SignedPreKey.ID, &b.SignedPreKey.Key, &b.SignedPreKey.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnknownUser
	}
	if err != nil {
		return nil, err
	}
	return b.X3DH()
}

// setSignedPreKey stores spk as name's signed prekey and reports whether
// it differs from the one stored.
func (s *Server) setSignedPreKey(ctx context.Context, name string, spk api.SignedPreKey) (changed bool, err error) {
	res, err := s.db.ExecContext(ctx,
		`UPDATE users SET spk_id = ?, spk = ?, spk_sig = ? WHERE name = ? AND (spk_id != ? OR spk != ? OR spk_sig != ?)`,
		spk.ID, spk.Key, spk.Signature, name, spk.ID, spk.Key, spk.Signature)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *Server) addPreKeys(ctx context.Context, name string, opks []api.PreKey) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.addPreKeysTx(ctx, tx, name, opks) })
}

func (s *Server) addPreKeysTx(ctx context.Context, tx *sql.Tx, name string, opks []api.PreKey) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM prekeys WHERE user = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n+len(opks) > s.cfg.MaxPreKeys {
		return errTooMany
	}
	for _, pk := range opks {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM prekeys WHERE user = ? AND id = ?`, name, pk.ID).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return errPreKeyExists
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO prekeys (user, id, key) VALUES (?, ?, ?)`, name, pk.ID, pk.Key); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) countPreKeys(ctx context.Context, name string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM prekeys WHERE user = ?`, name).Scan(&n)
	return n, err
}

// takeBundle reads name's bundle and removes the one-time prekey it hands
// out, in one transaction: no two callers can get the same prekey, and the
// prekey always belongs to the identity key it is returned with. The
// lowest id goes first, if there is one and mayTake allows it; mayTake is
// asked only then, so that fetches of unknown users or of an empty stock
// spend nothing of the owner's allowance. remaining is the count left
// afterwards.
func (s *Server) takeBundle(ctx context.Context, name string, mayTake func() bool) (b *api.Bundle, remaining int, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		b = &api.Bundle{Name: name}
		err := tx.QueryRowContext(ctx, `SELECT identity_key, spk_id, spk, spk_sig FROM users WHERE name = ?`, name).
			Scan(&b.IdentityKey, &b.SignedPreKey.ID, &b.SignedPreKey.Key, &b.SignedPreKey.Signature)
		if errors.Is(err, sql.ErrNoRows) {
			return errUnknownUser
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM prekeys WHERE user = ?`, name).Scan(&remaining); err != nil {
			return err
		}
		switch {
		case remaining == 0:
			b.Exhausted = true
			return nil
		case !mayTake():
			b.Withheld = true
			return nil
		}
		var pk api.PreKey
		if err := tx.QueryRowContext(ctx, `DELETE FROM prekeys WHERE user = ? AND id =
			(SELECT id FROM prekeys WHERE user = ? ORDER BY id LIMIT 1) RETURNING id, key`, name, name).
			Scan(&pk.ID, &pk.Key); err != nil {
			return err
		}
		b.OneTimePreKey = &pk
		remaining--
		s.deleted()
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return b, remaining, nil
}

type queued struct {
	seq  int64
	from string
	body []byte
}

// pending returns up to limit envelopes for recipient after sequence
// number after, oldest first.
func (s *Server) pending(ctx context.Context, recipient string, after int64, limit int) ([]queued, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT seq, sender, body FROM queue WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?`,
		recipient, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.seq, &q.from, &q.body); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

func (s *Server) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
