package server

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// storage is everything the server keeps outside its memory: users, keys,
// the queue, invite codes, and, where instances share them, rate limits
// and notifications between instances. Two implementations:
//
//   - sqliteStorage, one file for one process (the default): the total of
//     queued bytes and the rate limits live in the process, and there is
//     no other instance to tell anything.
//   - postgresStorage, one database for any number of instances: the
//     total and the limits are rows every instance updates, and a commit
//     to the queue is announced to the others with NOTIFY.
//
// Both embed sqlCore, the queries they share. Errors name no stored
// value, so the handlers may log them.
type storage interface {
	userByToken(ctx context.Context, token string) (string, error)
	userExists(ctx context.Context, name string) (bool, error)
	register(ctx context.Context, name, token, invite string, ks *keySet) error
	replaceKeys(ctx context.Context, name string, ks *keySet) error
	identityKey(ctx context.Context, name string) ([]byte, error)
	storedBundle(ctx context.Context, name string) (*x3dh.Bundle, error)
	setSignedPreKey(ctx context.Context, name string, spk api.SignedPreKey) (changed bool, err error)
	addPreKeys(ctx context.Context, name string, opks []api.PreKey) error
	countPreKeys(ctx context.Context, name string) (int, error)
	takeBundle(ctx context.Context, name string, mayTake func() bool) (b *api.Bundle, remaining int, err error)
	pending(ctx context.Context, recipient string, after int64, limit int) ([]queued, error)
	enqueue(ctx context.Context, from, to string, body []byte) (int64, error)
	ack(ctx context.Context, recipient string, seq int64) error
	loadInvites(ctx context.Context, codes []string) error
	inviteUsable(ctx context.Context, invite string) (bool, error)

	// limiter returns the rate limit called name, shared by every
	// instance on the same storage.
	limiter(name string, rate float64, burst int) rateLimiter
	// publish tells the other instances of ev; listen calls fn with what
	// the others publish, and with an event of kind evResync after any
	// gap in which events may have been missed, until ctx ends.
	publish(ctx context.Context, ev event)
	listen(ctx context.Context, fn func(event))
	// ping checks that the storage answers, for /healthz.
	ping(ctx context.Context) error
	close() error
}

// event is what one instance tells the others.
type event struct {
	kind string // evQueued, evPreKeys, evConnected or evResync
	user string
	n    int // the prekey count, for evPreKeys
}

const (
	evQueued    = "q" // something was queued for user
	evPreKeys   = "p" // user has n one-time prekeys left
	evConnected = "c" // user connected to another instance
	evResync    = "r" // events may have been lost: re-read every queue
)

// rateLimiter limits requests per key.
type rateLimiter interface {
	// allow spends one request of key's allowance, or says how long
	// until there is one.
	allow(ctx context.Context, key string) (bool, time.Duration)
}

// sqlCore holds the queries both backends run, written once in the SQL
// they share; q rewrites the placeholders for PostgreSQL. Column user of
// prekeys is quoted, a reserved word in PostgreSQL that SQLite accepts
// quoted too.
type sqlCore struct {
	db  *sql.DB
	pg  bool
	cfg *Config
	now func() time.Time
	// deleted records that a row worth wiping was deleted (see
	// sqliteStorage.checkpoint).
	deleted func()
}

// q returns query with its ? placeholders numbered $1, $2, … for
// PostgreSQL. No query here has a ? anywhere but as a placeholder.
func (c *sqlCore) q(query string) string {
	if !c.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

//go:embed migrations
var migrationFS embed.FS

// migrate brings the schema up to the newest migration in
// migrations/<dialect>, applying every missing one and recording it in
// schema_migrations, all in one transaction. Files are numbered
// NNNN_name.sql from 0001 without gaps; statements end with a semicolon at
// the end of a line. lock, if not empty, runs first: instances starting at
// once on one PostgreSQL database would otherwise race each other even at
// CREATE TABLE IF NOT EXISTS.
func (c *sqlCore) migrate(ctx context.Context, dialect, lock string) error {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return err
	}
	return c.tx(ctx, func(tx *sql.Tx) error {
		if lock != "" {
			if _, err := tx.ExecContext(ctx, lock); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		for i, e := range entries { // sorted by name
			num, _, _ := strings.Cut(e.Name(), "_")
			if v, err := strconv.Atoi(num); err != nil || v != i+1 || !strings.HasSuffix(e.Name(), ".sql") {
				return fmt.Errorf("migration %s out of sequence", e.Name())
			}
			var done int
			if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM schema_migrations WHERE version = ?`), i+1).Scan(&done); err != nil {
				return err
			}
			if done > 0 {
				continue
			}
			b, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			for _, stmt := range strings.Split(string(b), ";\n") {
				if strings.TrimSpace(stripComments(stmt)) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s: %w", e.Name(), err)
				}
			}
			if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO schema_migrations (version) VALUES (?)`), i+1); err != nil {
				return err
			}
		}
		return nil
	})
}

// stripComments drops the -- comment lines of a migration statement.
func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// uniqueViolation turns PostgreSQL's refusal of a duplicate name or
// identity key into errNameTaken or errKeyTaken: another instance
// registered it between the checks and the insert. Other errors, and
// SQLite's (whose single connection leaves no such gap), pass unchanged.
func uniqueViolation(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return err
	}
	if pe.ConstraintName == "users_identity_key_key" {
		return errKeyTaken
	}
	return errNameTaken
}

func (c *sqlCore) ping(ctx context.Context) error { return c.db.PingContext(ctx) }

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
func (c *sqlCore) userByToken(ctx context.Context, token string) (string, error) {
	var name string
	err := c.db.QueryRowContext(ctx, c.q(`SELECT name FROM users WHERE token_hash = ?`), hashToken(token)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errUnknownUser
	}
	return name, err
}

func (c *sqlCore) userExists(ctx context.Context, name string) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM users WHERE name = ?`), name).Scan(&n)
	return n > 0, err
}

// keySet is a validated set of public keys to store.
type keySet struct {
	identityKey []byte
	spk         api.SignedPreKey
	opks        []api.PreKey
}

func (c *sqlCore) register(ctx context.Context, name, token, invite string, ks *keySet) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM users WHERE name = ?`), name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errNameTaken
		}
		if err := c.checkIdentityFree(ctx, tx, name, ks.identityKey); err != nil {
			return err
		}
		if err := c.useInvite(ctx, tx, name, invite); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			c.q(`INSERT INTO users (name, token_hash, identity_key, spk_id, spk, spk_sig, created) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			name, hashToken(token), ks.identityKey, int64(ks.spk.ID), ks.spk.Key, ks.spk.Signature, c.now().Unix()); err != nil {
			return uniqueViolation(err)
		}
		return c.addPreKeysTx(ctx, tx, name, ks.opks)
	})
}

// replaceKeys swaps every key of name for those of ks: the old one-time
// prekeys belong to the old identity and go with it.
func (c *sqlCore) replaceKeys(ctx context.Context, name string, ks *keySet) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		if err := c.checkIdentityFree(ctx, tx, name, ks.identityKey); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			c.q(`UPDATE users SET identity_key = ?, spk_id = ?, spk = ?, spk_sig = ? WHERE name = ?`),
			ks.identityKey, int64(ks.spk.ID), ks.spk.Key, ks.spk.Signature, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, c.q(`DELETE FROM prekeys WHERE "user" = ?`), name); err != nil {
			return err
		}
		c.deleted()
		return c.addPreKeysTx(ctx, tx, name, ks.opks)
	})
}

// checkIdentityFree fails with errKeyTaken if a user other than name has
// identity key ik. Two names with one identity key are an unknown
// key-share: whoever registered "alice2" with alice's public keys (all of
// them public, so copying needs no secret) has contacts run X3DH with
// alice's keys, and alice receives, and may believe, messages meant for
// "alice2". The unique index on identity_key enforces the same rule; this
// check turns it into an error the handlers can name.
func (c *sqlCore) checkIdentityFree(ctx context.Context, tx *sql.Tx, name string, ik []byte) error {
	var n int
	if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM users WHERE identity_key = ? AND name != ?`), ik, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return errKeyTaken
	}
	return nil
}

func (c *sqlCore) identityKey(ctx context.Context, name string) ([]byte, error) {
	var ik []byte
	err := c.db.QueryRowContext(ctx, c.q(`SELECT identity_key FROM users WHERE name = ?`), name).Scan(&ik)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnknownUser
	}
	return ik, err
}

// storedBundle returns name's identity and signed prekeys as a bundle
// without a one-time prekey, to check new one-time prekeys against.
func (c *sqlCore) storedBundle(ctx context.Context, name string) (*x3dh.Bundle, error) {
	b := api.Bundle{Name: name}
	err := c.db.QueryRowContext(ctx, c.q(`SELECT identity_key, spk_id, spk, spk_sig FROM users WHERE name = ?`), name).
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
func (c *sqlCore) setSignedPreKey(ctx context.Context, name string, spk api.SignedPreKey) (changed bool, err error) {
	res, err := c.db.ExecContext(ctx,
		c.q(`UPDATE users SET spk_id = ?, spk = ?, spk_sig = ? WHERE name = ? AND (spk_id != ? OR spk != ? OR spk_sig != ?)`),
		int64(spk.ID), spk.Key, spk.Signature, name, int64(spk.ID), spk.Key, spk.Signature)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (c *sqlCore) addPreKeys(ctx context.Context, name string, opks []api.PreKey) error {
	return c.tx(ctx, func(tx *sql.Tx) error { return c.addPreKeysTx(ctx, tx, name, opks) })
}

// addPreKeysTx adds opks to name's stock. On PostgreSQL it first locks
// name's row, so that two instances adding at once cannot both pass the
// MaxPreKeys check; SQLite's single connection serialises it anyway.
func (c *sqlCore) addPreKeysTx(ctx context.Context, tx *sql.Tx, name string, opks []api.PreKey) error {
	if c.pg {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE name = $1 FOR UPDATE`, name); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ?`), name).Scan(&n); err != nil {
		return err
	}
	if n+len(opks) > c.cfg.MaxPreKeys {
		return errTooMany
	}
	for _, pk := range opks {
		var exists int
		if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ? AND id = ?`), name, int64(pk.ID)).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return errPreKeyExists
		}
		if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO prekeys ("user", id, key) VALUES (?, ?, ?)`), name, int64(pk.ID), pk.Key); err != nil {
			return err
		}
	}
	return nil
}

func (c *sqlCore) countPreKeys(ctx context.Context, name string) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ?`), name).Scan(&n)
	return n, err
}

// takeBundle reads name's bundle and removes the one-time prekey it hands
// out, in one transaction: no two callers can get the same prekey, and the
// prekey always belongs to the identity key it is returned with. The
// lowest id goes first, if there is one and mayTake allows it; mayTake is
// asked only then, so that fetches of unknown users or of an empty stock
// spend nothing of the owner's allowance. remaining is the count left
// afterwards.
//
// mayTake is asked before the transaction, after a look at the stock:
// with PostgreSQL it is a query of its own, which inside the transaction
// would hold one pooled connection while waiting for another, and enough
// concurrent fetches would then wait for each other for ever. A stock
// emptied between the look and the transaction costs the owner one
// allowance for nothing.
//
// On SQLite the one connection makes the transaction run alone. On
// PostgreSQL, transactions of several instances run at once: the inner
// SELECT locks the row it picks, and SKIP LOCKED makes a concurrent one
// pick the next row instead of waiting for the first to commit and then
// finding its row gone. A stock whose every row is locked by others
// counts as exhausted for this fetch.
func (c *sqlCore) takeBundle(ctx context.Context, name string, mayTake func() bool) (b *api.Bundle, remaining int, err error) {
	take := `DELETE FROM prekeys WHERE "user" = ? AND id =
		(SELECT id FROM prekeys WHERE "user" = ? ORDER BY id LIMIT 1) RETURNING id, key`
	if c.pg {
		take = `DELETE FROM prekeys WHERE "user" = $1 AND id =
			(SELECT id FROM prekeys WHERE "user" = $2 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, key`
	}
	if ok, err := c.userExists(ctx, name); err != nil || !ok {
		if err == nil {
			err = errUnknownUser
		}
		return nil, 0, err
	}
	n, err := c.countPreKeys(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	takeOne := n > 0 && mayTake()
	err = c.tx(ctx, func(tx *sql.Tx) error {
		b = &api.Bundle{Name: name}
		err := tx.QueryRowContext(ctx, c.q(`SELECT identity_key, spk_id, spk, spk_sig FROM users WHERE name = ?`), name).
			Scan(&b.IdentityKey, &b.SignedPreKey.ID, &b.SignedPreKey.Key, &b.SignedPreKey.Signature)
		if errors.Is(err, sql.ErrNoRows) {
			return errUnknownUser
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ?`), name).Scan(&remaining); err != nil {
			return err
		}
		switch {
		case remaining == 0 || n == 0:
			b.Exhausted = true
			return nil
		case !takeOne:
			b.Withheld = true
			return nil
		}
		var pk api.PreKey
		switch err := tx.QueryRowContext(ctx, take, name, name).Scan(&pk.ID, &pk.Key); {
		case errors.Is(err, sql.ErrNoRows):
			b.Exhausted = true
			return nil
		case err != nil:
			return err
		}
		b.OneTimePreKey = &pk
		remaining--
		c.deleted()
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
func (c *sqlCore) pending(ctx context.Context, recipient string, after int64, limit int) ([]queued, error) {
	rows, err := c.db.QueryContext(ctx,
		c.q(`SELECT seq, sender, body FROM queue WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?`),
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

func (c *sqlCore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
