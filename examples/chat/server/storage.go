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
	userByToken(ctx context.Context, token string) (device, error)
	userExists(ctx context.Context, name string) (bool, error)
	deviceExists(ctx context.Context, d device) (bool, error)
	devices(ctx context.Context, name string) ([]uint32, error)
	register(ctx context.Context, name, token, invite string, ks *keySet) error
	createLink(ctx context.Context, name, code string, provision []byte, expires int64) error
	provision(ctx context.Context, name, code string) ([]byte, error)
	addDevice(ctx context.Context, name, token, code string, ks *keySet) (uint32, error)
	replaceKeys(ctx context.Context, d device, ks *keySet) error
	identityKey(ctx context.Context, d device) ([]byte, error)
	storedBundle(ctx context.Context, d device) (*x3dh.Bundle, error)
	setSignedPreKey(ctx context.Context, d device, spk api.SignedPreKey) (changed bool, err error)
	addPreKeys(ctx context.Context, d device, opks []api.PreKey) error
	countPreKeys(ctx context.Context, d device) (int, error)
	takeBundle(ctx context.Context, d device, mayTake func() bool) (b *api.Bundle, remaining int, err error)
	pending(ctx context.Context, recipient device, after int64, limit int) ([]queued, error)
	enqueue(ctx context.Context, from, to device, body []byte) (int64, error)
	ack(ctx context.Context, recipient device, seq int64) error
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

// device names one device of a user: what a token authenticates, what
// prekeys and queued envelopes belong to.
type device struct {
	user string
	id   uint32
}

// key is the device's name in the hub, the limits and events: the user
// name, a colon (which names do not have) and the id.
func (d device) key() string { return d.user + ":" + strconv.FormatUint(uint64(d.id), 10) }

// event is what one instance tells the others.
type event struct {
	kind string // evQueued, evPreKeys, evConnected or evResync
	dev  string // device.key() of the device concerned
	n    int    // the prekey count, for evPreKeys
}

const (
	evQueued    = "q" // something was queued for dev
	evPreKeys   = "p" // dev has n one-time prekeys left
	evConnected = "c" // dev connected to another instance
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
// devices, prekeys and device_links is quoted, a reserved word in
// PostgreSQL that SQLite accepts quoted too.
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
func (c *sqlCore) migrate(ctx context.Context, db beginner, dialect, lock string) error {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return err
	}
	return txOn(ctx, db, func(tx *sql.Tx) error {
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
	if pe.ConstraintName == "identity_keys_pkey" {
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
	errNameTaken      = errors.New("name taken")
	errUnknownUser    = errors.New("unknown user")
	errUnknownDevice  = errors.New("unknown device")
	errBadLink        = errors.New("link code missing, unknown, used or expired")
	errTooManyDevices = errors.New("too many devices")
	errPreKeyExists   = errors.New("prekey id exists")
	errTooMany        = errors.New("too many")
	errKeyTaken       = errors.New("identity key registered to another name")
)

// userByToken returns the device whose token hashes to the stored hash.
// The hash is of a 256-bit random token, so looking it up by value leaks
// nothing a timing attacker could use.
func (c *sqlCore) userByToken(ctx context.Context, token string) (device, error) {
	var d device
	err := c.db.QueryRowContext(ctx, c.q(`SELECT "user", id FROM devices WHERE token_hash = ?`), hashToken(token)).Scan(&d.user, &d.id)
	if errors.Is(err, sql.ErrNoRows) {
		return device{}, errUnknownUser
	}
	return d, err
}

func (c *sqlCore) userExists(ctx context.Context, name string) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM users WHERE name = ?`), name).Scan(&n)
	return n > 0, err
}

func (c *sqlCore) deviceExists(ctx context.Context, d device) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM devices WHERE "user" = ? AND id = ?`), d.user, int64(d.id)).Scan(&n)
	return n > 0, err
}

// devices returns name's device ids in increasing order, or
// errUnknownUser.
func (c *sqlCore) devices(ctx context.Context, name string) ([]uint32, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT id FROM devices WHERE "user" = ? ORDER BY id`), name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []uint32
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, uint32(id))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errUnknownUser
	}
	return ids, nil
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
		if err := c.useInvite(ctx, tx, name, invite); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO users (name, created) VALUES (?, ?)`), name, c.now().Unix()); err != nil {
			return uniqueViolation(err)
		}
		if err := c.checkIdentityFree(ctx, tx, device{name, 1}, ks.identityKey); err != nil {
			return err
		}
		return c.insertDevice(ctx, tx, device{name, 1}, token, ks)
	})
}

// insertDevice stores a new device with its keys.
func (c *sqlCore) insertDevice(ctx context.Context, tx *sql.Tx, d device, token string, ks *keySet) error {
	if _, err := tx.ExecContext(ctx,
		c.q(`INSERT INTO devices ("user", id, token_hash, identity_key, spk_id, spk, spk_sig, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		d.user, int64(d.id), hashToken(token), ks.identityKey, int64(ks.spk.ID), ks.spk.Key, ks.spk.Signature, c.now().Unix()); err != nil {
		return uniqueViolation(err)
	}
	return c.addPreKeysTx(ctx, tx, d, ks.opks)
}

// createLink makes code the one link code of name's account, valid until
// expires, with the provisioning message a new device fetches with it:
// any earlier code of the account is void.
func (c *sqlCore) createLink(ctx context.Context, name, code string, provision []byte, expires int64) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, c.q(`DELETE FROM device_links WHERE "user" = ? OR expires < ?`), name, c.now().Unix()); err != nil {
			return err
		}
		c.deleted()
		_, err := tx.ExecContext(ctx, c.q(`INSERT INTO device_links (code_hash, "user", expires, provision) VALUES (?, ?, ?, ?)`),
			hashToken(code), name, expires, provision)
		return err
	})
}

// provision returns the provisioning message of name's link code code, if
// it is live, or errBadLink. It does not use the code up.
func (c *sqlCore) provision(ctx context.Context, name, code string) ([]byte, error) {
	var p []byte
	err := c.db.QueryRowContext(ctx, c.q(`SELECT provision FROM device_links WHERE code_hash = ? AND "user" = ? AND expires >= ?`),
		hashToken(code), name, c.now().Unix()).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadLink
	}
	return p, err
}

// addDevice adds a device to name's account if code is the account's
// link code and has not expired, using the code up, and returns the new
// device's id: one above the highest. On PostgreSQL the account's row is
// locked first, so that two devices joining at once cannot both take the
// same id or both pass the MaxDevices check.
func (c *sqlCore) addDevice(ctx context.Context, name, token, code string, ks *keySet) (uint32, error) {
	var id uint32
	err := c.tx(ctx, func(tx *sql.Tx) error {
		if c.pg {
			if _, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE name = $1 FOR UPDATE`, name); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, c.q(`DELETE FROM device_links WHERE code_hash = ? AND "user" = ? AND expires >= ?`),
			hashToken(code), name, c.now().Unix())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = errBadLink
			}
			return err
		}
		c.deleted()
		var n int
		var top int64
		if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*), coalesce(max(id), 0) FROM devices WHERE "user" = ?`), name).Scan(&n, &top); err != nil {
			return err
		}
		if n >= c.cfg.MaxDevices {
			return errTooManyDevices
		}
		id = uint32(top + 1)
		if err := c.checkIdentityFree(ctx, tx, device{name, id}, ks.identityKey); err != nil {
			return err
		}
		return c.insertDevice(ctx, tx, device{name, id}, token, ks)
	})
	return id, err
}

// replaceKeys swaps every key of d for those of ks: the old one-time
// prekeys belong to the old identity and go with it.
func (c *sqlCore) replaceKeys(ctx context.Context, d device, ks *keySet) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		if err := c.checkIdentityFree(ctx, tx, d, ks.identityKey); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			c.q(`UPDATE devices SET identity_key = ?, spk_id = ?, spk = ?, spk_sig = ? WHERE "user" = ? AND id = ?`),
			ks.identityKey, int64(ks.spk.ID), ks.spk.Key, ks.spk.Signature, d.user, int64(d.id)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, c.q(`DELETE FROM prekeys WHERE "user" = ? AND device = ?`), d.user, int64(d.id)); err != nil {
			return err
		}
		c.deleted()
		return c.addPreKeysTx(ctx, tx, d, ks.opks)
	})
}

// checkIdentityFree claims identity key ik for d's user, in tx, or fails
// with errKeyTaken if another user has it. Two names with one identity
// key are an unknown key-share: whoever registered "alice2" with alice's
// public keys (all of them public, so copying needs no secret) has
// contacts run X3DH with alice's keys, and alice receives, and may
// believe, messages meant for "alice2". The devices of one user share
// their identity key (see package client), so the rule is per user, kept
// in identity_keys: its primary key makes the claim one step on
// PostgreSQL too, where a concurrent claim waits for the first to commit
// and then sees it. A key once claimed stays its user's, after a reset
// too.
func (c *sqlCore) checkIdentityFree(ctx context.Context, tx *sql.Tx, d device, ik []byte) error {
	if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO identity_keys (key, "user") VALUES (?, ?) ON CONFLICT (key) DO NOTHING`), ik, d.user); err != nil {
		return err
	}
	var owner string
	if err := tx.QueryRowContext(ctx, c.q(`SELECT "user" FROM identity_keys WHERE key = ?`), ik).Scan(&owner); err != nil {
		return err
	}
	if owner != d.user {
		return errKeyTaken
	}
	return nil
}

func (c *sqlCore) identityKey(ctx context.Context, d device) ([]byte, error) {
	var ik []byte
	err := c.db.QueryRowContext(ctx, c.q(`SELECT identity_key FROM devices WHERE "user" = ? AND id = ?`), d.user, int64(d.id)).Scan(&ik)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnknownUser
	}
	return ik, err
}

// storedBundle returns d's identity and signed prekeys as a bundle
// without a one-time prekey, to check new one-time prekeys against.
func (c *sqlCore) storedBundle(ctx context.Context, d device) (*x3dh.Bundle, error) {
	b := api.Bundle{Name: d.user, Device: d.id}
	err := c.db.QueryRowContext(ctx, c.q(`SELECT identity_key, spk_id, spk, spk_sig FROM devices WHERE "user" = ? AND id = ?`), d.user, int64(d.id)).
		Scan(&b.IdentityKey, &b.SignedPreKey.ID, &b.SignedPreKey.Key, &b.SignedPreKey.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnknownUser
	}
	if err != nil {
		return nil, err
	}
	return b.X3DH()
}

// setSignedPreKey stores spk as d's signed prekey and reports whether
// it differs from the one stored.
func (c *sqlCore) setSignedPreKey(ctx context.Context, d device, spk api.SignedPreKey) (changed bool, err error) {
	res, err := c.db.ExecContext(ctx,
		c.q(`UPDATE devices SET spk_id = ?, spk = ?, spk_sig = ? WHERE "user" = ? AND id = ? AND (spk_id != ? OR spk != ? OR spk_sig != ?)`),
		int64(spk.ID), spk.Key, spk.Signature, d.user, int64(d.id), int64(spk.ID), spk.Key, spk.Signature)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (c *sqlCore) addPreKeys(ctx context.Context, d device, opks []api.PreKey) error {
	return c.tx(ctx, func(tx *sql.Tx) error { return c.addPreKeysTx(ctx, tx, d, opks) })
}

// addPreKeysTx adds opks to d's stock. On PostgreSQL it first locks
// d's row, so that two instances adding at once cannot both pass the
// MaxPreKeys check; SQLite's single connection serialises it anyway.
func (c *sqlCore) addPreKeysTx(ctx context.Context, tx *sql.Tx, d device, opks []api.PreKey) error {
	if c.pg {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM devices WHERE "user" = $1 AND id = $2 FOR UPDATE`, d.user, int64(d.id)); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ? AND device = ?`), d.user, int64(d.id)).Scan(&n); err != nil {
		return err
	}
	if n+len(opks) > c.cfg.MaxPreKeys {
		return errTooMany
	}
	for _, pk := range opks {
		var exists int
		if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ? AND device = ? AND id = ?`),
			d.user, int64(d.id), int64(pk.ID)).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return errPreKeyExists
		}
		if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO prekeys ("user", device, id, key) VALUES (?, ?, ?, ?)`),
			d.user, int64(d.id), int64(pk.ID), pk.Key); err != nil {
			return err
		}
	}
	return nil
}

func (c *sqlCore) countPreKeys(ctx context.Context, d device) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ? AND device = ?`), d.user, int64(d.id)).Scan(&n)
	return n, err
}

// takeBundle reads d's bundle and removes the one-time prekey it hands
// out, in one transaction: no two callers can get the same prekey, and the
// prekey always belongs to the identity key it is returned with. The
// lowest id goes first, if there is one and mayTake allows it; mayTake is
// asked only then, so that fetches of unknown devices or of an empty stock
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
func (c *sqlCore) takeBundle(ctx context.Context, d device, mayTake func() bool) (b *api.Bundle, remaining int, err error) {
	take := `DELETE FROM prekeys WHERE "user" = ? AND device = ? AND id =
		(SELECT id FROM prekeys WHERE "user" = ? AND device = ? ORDER BY id LIMIT 1) RETURNING id, key`
	if c.pg {
		take = `DELETE FROM prekeys WHERE "user" = $1 AND device = $2 AND id =
			(SELECT id FROM prekeys WHERE "user" = $3 AND device = $4 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, key`
	}
	if ok, err := c.deviceExists(ctx, d); err != nil || !ok {
		if err == nil {
			err = errUnknownUser
			if ok, _ := c.userExists(ctx, d.user); ok {
				err = errUnknownDevice
			}
		}
		return nil, 0, err
	}
	n, err := c.countPreKeys(ctx, d)
	if err != nil {
		return nil, 0, err
	}
	takeOne := n > 0 && mayTake()
	err = c.tx(ctx, func(tx *sql.Tx) error {
		b = &api.Bundle{Name: d.user, Device: d.id}
		err := tx.QueryRowContext(ctx, c.q(`SELECT identity_key, spk_id, spk, spk_sig FROM devices WHERE "user" = ? AND id = ?`), d.user, int64(d.id)).
			Scan(&b.IdentityKey, &b.SignedPreKey.ID, &b.SignedPreKey.Key, &b.SignedPreKey.Signature)
		if errors.Is(err, sql.ErrNoRows) {
			return errUnknownUser
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM prekeys WHERE "user" = ? AND device = ?`), d.user, int64(d.id)).Scan(&remaining); err != nil {
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
		switch err := tx.QueryRowContext(ctx, take, d.user, int64(d.id), d.user, int64(d.id)).Scan(&pk.ID, &pk.Key); {
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
	from device
	body []byte
}

// pending returns up to limit envelopes for recipient after sequence
// number after, oldest first.
func (c *sqlCore) pending(ctx context.Context, recipient device, after int64, limit int) ([]queued, error) {
	rows, err := c.db.QueryContext(ctx,
		c.q(`SELECT seq, sender, sender_device, body FROM queue WHERE recipient = ? AND device = ? AND seq > ? ORDER BY seq LIMIT ?`),
		recipient.user, int64(recipient.id), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queued
	for rows.Next() {
		var q queued
		var dev int64
		if err := rows.Scan(&q.seq, &q.from.user, &dev, &q.body); err != nil {
			return nil, err
		}
		q.from.id = uint32(dev)
		out = append(out, q)
	}
	return out, rows.Err()
}

func (c *sqlCore) tx(ctx context.Context, fn func(*sql.Tx) error) error { return txOn(ctx, c.db, fn) }

// beginner is a *sql.DB or a *sql.Conn: what a transaction runs on.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// txOn runs fn in a transaction on db and commits if fn succeeds.
func txOn(ctx context.Context, db beginner, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
