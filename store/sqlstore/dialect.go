package sqlstore

import (
	"strconv"
	"strings"
)

// Dialect selects the SQL that a Store speaks. The package imports no
// driver, so it cannot tell the database from the *sql.DB alone.
type Dialect int

const (
	// SQLite is SQLite 3.35 or later, as modernc.org/sqlite provides.
	SQLite Dialect = iota + 1
	// PostgreSQL is PostgreSQL 12 or later, through a database/sql driver
	// such as pgx's stdlib package.
	PostgreSQL
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "SQLite"
	case PostgreSQL:
		return "PostgreSQL"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// queries is the SQL of one dialect. Statements are written once, with ?
// placeholders, and rebound for PostgreSQL, which numbers them.
type queries struct {
	dir string // of the dialect's migrations

	// lock starts every Update. Its row lock (PostgreSQL) or write lock
	// (SQLite) on the schema row serializes Updates across connections
	// and processes, and it returns the schema version to check. On
	// SQLite it is the transaction's first statement and a write, so it
	// takes the write lock at once, waiting under busy_timeout; a
	// transaction that read first and wrote later would instead fail with
	// SQLITE_BUSY whenever another connection had written in between.
	lock string
	// migrationLock serializes concurrent Opens of a new PostgreSQL
	// database, whose CREATE TABLE IF NOT EXISTS statements would
	// otherwise race.
	migrationLock string
	createSchema  string
	initSchema    string
	schemaVersion string
	setVersion    string

	localLoad, localSave                                 string
	identityLoad, identitySave                           string
	preKeyLoad, preKeyRemove, preKeyCount, preKeyLastID  string
	preKeyBumpLastID                                     string
	savepoint, rollbackToSavepoint, releaseSavepoint     string
	signedLoad, signedAdd, signedList, signedRemove      string
	sessionLoad, sessionSave, sessionDelete, sessionDevs string
	sessionDeleteAll, preKeyIDs                          string

	kyberLoad, kyberKind, kyberRemove, kyberList  string
	senderKeyLoad, senderKeySave, senderKeyDelete string
	kyberCount, kyberLastID, kyberBumpLastID      string
	kyberRecord, kyberSetUsed, kyberForget        string
	kyberForgetSigned                             string
}

// insertRows is how many prekeys one INSERT statement adds, which keeps
// its placeholders (four per Kyber prekey) well below both databases'
// limits.
const insertRows = 256

// preKeyInsert returns an INSERT of n one-time prekeys that skips stored
// ids.
func (d Dialect) preKeyInsert(n int) string {
	return d.insert("ratchetkit_prekeys (id, private_key)", 2, n)
}

// kyberInsert returns an INSERT of n Kyber prekeys that skips stored ids.
func (d Dialect) kyberInsert(n int) string {
	return d.insert("ratchetkit_kyber_prekeys (id, last_resort, created, record)", 4, n)
}

// insert returns an INSERT into table (with its column list) of n rows of
// width values that skips rows whose id is stored.
func (d Dialect) insert(table string, width, n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " VALUES ")
	row := "(?" + strings.Repeat(", ?", width-1) + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(" ON CONFLICT (id) DO NOTHING")
	return d.rebind(b.String())
}

func newQueries(d Dialect) *queries {
	q := &queries{
		createSchema: `CREATE TABLE IF NOT EXISTS ratchetkit_schema (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL)`,
		initSchema:    `INSERT INTO ratchetkit_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
		schemaVersion: `SELECT version FROM ratchetkit_schema WHERE id = 1`,
		setVersion:    `UPDATE ratchetkit_schema SET version = ? WHERE id = 1`,

		localLoad: `SELECT private_key, device_id FROM ratchetkit_local WHERE id = 1`,
		localSave: `INSERT INTO ratchetkit_local (id, private_key, device_id) VALUES (1, ?, ?)
	ON CONFLICT (id) DO UPDATE SET private_key = excluded.private_key, device_id = excluded.device_id`,

		identityLoad: `SELECT public_key FROM ratchetkit_identities WHERE name_hash = ? AND device_id = ?`,
		identitySave: `INSERT INTO ratchetkit_identities (name_hash, device_id, name, public_key) VALUES (?, ?, ?, ?)
	ON CONFLICT (name_hash, device_id) DO UPDATE SET public_key = excluded.public_key`,

		preKeyLoad:       `SELECT private_key FROM ratchetkit_prekeys WHERE id = ?`,
		preKeyRemove:     `DELETE FROM ratchetkit_prekeys WHERE id = ?`,
		preKeyCount:      `SELECT COUNT(*) FROM ratchetkit_prekeys`,
		preKeyLastID:     `SELECT last_id FROM ratchetkit_prekey_counter WHERE id = 1`,
		preKeyBumpLastID: `UPDATE ratchetkit_prekey_counter SET last_id = ? WHERE id = 1 AND last_id < ?`,

		savepoint:           `SAVEPOINT ratchetkit_add`,
		rollbackToSavepoint: `ROLLBACK TO SAVEPOINT ratchetkit_add`,
		releaseSavepoint:    `RELEASE SAVEPOINT ratchetkit_add`,

		signedLoad: `SELECT created, private_key, signature FROM ratchetkit_signed_prekeys WHERE id = ?`,
		signedAdd: `INSERT INTO ratchetkit_signed_prekeys (id, created, private_key, signature) VALUES (?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`,
		signedList:   `SELECT id, created FROM ratchetkit_signed_prekeys ORDER BY created, id`,
		signedRemove: `DELETE FROM ratchetkit_signed_prekeys WHERE id = ?`,

		sessionLoad: `SELECT record FROM ratchetkit_sessions WHERE name_hash = ? AND device_id = ?`,
		sessionSave: `INSERT INTO ratchetkit_sessions (name_hash, device_id, name, record) VALUES (?, ?, ?, ?)
	ON CONFLICT (name_hash, device_id) DO UPDATE SET record = excluded.record`,
		sessionDelete: `DELETE FROM ratchetkit_sessions WHERE name_hash = ? AND device_id = ?`,
		sessionDevs:   `SELECT device_id FROM ratchetkit_sessions WHERE name_hash = ? ORDER BY device_id`,

		sessionDeleteAll: `DELETE FROM ratchetkit_sessions`,
		preKeyIDs:        `SELECT id FROM ratchetkit_prekeys ORDER BY id`,

		kyberLoad:   `SELECT record FROM ratchetkit_kyber_prekeys WHERE id = ?`,
		kyberKind:   `SELECT last_resort FROM ratchetkit_kyber_prekeys WHERE id = ?`,
		kyberRemove: `DELETE FROM ratchetkit_kyber_prekeys WHERE id = ?`,
		kyberList:   `SELECT id, last_resort, used, created FROM ratchetkit_kyber_prekeys ORDER BY id`,
		kyberCount: `SELECT COUNT(*) - COALESCE(SUM(last_resort), 0), COALESCE(SUM(last_resort), 0)
	FROM ratchetkit_kyber_prekeys`,
		kyberLastID:     `SELECT last_id FROM ratchetkit_kyber_prekey_counter WHERE id = 1`,
		kyberBumpLastID: `UPDATE ratchetkit_kyber_prekey_counter SET last_id = ? WHERE id = 1 AND last_id < ?`,
		// DO NOTHING rather than a unique violation, which would abort a
		// PostgreSQL transaction: no row inserted is a repeated triple.
		kyberRecord: `INSERT INTO ratchetkit_kyber_used (kyber_id, signed_id, base_key) VALUES (?, ?, ?)
	ON CONFLICT (kyber_id, signed_id, base_key) DO NOTHING`,
		kyberSetUsed:      `UPDATE ratchetkit_kyber_prekeys SET used = 1 WHERE id = ? AND used = 0`,
		kyberForget:       `DELETE FROM ratchetkit_kyber_used WHERE kyber_id = ?`,
		kyberForgetSigned: `DELETE FROM ratchetkit_kyber_used WHERE signed_id = ?`,

		senderKeyLoad: `SELECT record FROM ratchetkit_sender_keys WHERE name_hash = ? AND device_id = ? AND distribution_id = ?`,
		senderKeySave: `INSERT INTO ratchetkit_sender_keys (name_hash, device_id, distribution_id, name, record) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (name_hash, device_id, distribution_id) DO UPDATE SET record = excluded.record`,
		senderKeyDelete: `DELETE FROM ratchetkit_sender_keys WHERE name_hash = ? AND device_id = ? AND distribution_id = ?`,
	}
	switch d {
	case SQLite:
		q.dir = "migrations/sqlite"
		q.lock = `UPDATE ratchetkit_schema SET version = version WHERE id = 1 RETURNING version`
	case PostgreSQL:
		q.dir = "migrations/postgres"
		q.lock = `SELECT version FROM ratchetkit_schema WHERE id = 1 FOR UPDATE`
		// Any fixed key will do; this one spells "ratchetk".
		q.migrationLock = `SELECT pg_advisory_xact_lock(8241996763366782059)`
		q.createSchema = `CREATE TABLE IF NOT EXISTS ratchetkit_schema (
	id SMALLINT PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL)`
	default:
		return nil
	}
	for _, s := range []*string{
		&q.setVersion, &q.localSave, &q.identityLoad, &q.identitySave,
		&q.preKeyLoad, &q.preKeyRemove, &q.preKeyBumpLastID,
		&q.signedLoad, &q.signedAdd, &q.signedRemove,
		&q.sessionLoad, &q.sessionSave, &q.sessionDelete, &q.sessionDevs,
		&q.kyberLoad, &q.kyberKind, &q.kyberRemove, &q.kyberBumpLastID,
		&q.kyberRecord, &q.kyberSetUsed, &q.kyberForget, &q.kyberForgetSigned,
		&q.senderKeyLoad, &q.senderKeySave, &q.senderKeyDelete,
	} {
		*s = d.rebind(*s)
	}
	return q
}

// prepared lists the statements a Store prepares at Open: all those its
// transactions run, except the prekey INSERTs, whose length varies.
func (q *queries) prepared() []string {
	return []string{
		q.lock,
		q.localLoad, q.localSave,
		q.identityLoad, q.identitySave,
		q.preKeyLoad, q.preKeyRemove, q.preKeyCount, q.preKeyLastID, q.preKeyBumpLastID,
		q.savepoint, q.rollbackToSavepoint, q.releaseSavepoint,
		q.signedLoad, q.signedAdd, q.signedList, q.signedRemove,
		q.sessionLoad, q.sessionSave, q.sessionDelete, q.sessionDevs,
		q.sessionDeleteAll, q.preKeyIDs,
		q.kyberLoad, q.kyberKind, q.kyberRemove, q.kyberList,
		q.kyberCount, q.kyberLastID, q.kyberBumpLastID,
		q.kyberRecord, q.kyberSetUsed, q.kyberForget, q.kyberForgetSigned,
		q.senderKeyLoad, q.senderKeySave, q.senderKeyDelete,
	}
}

// rebind turns the ? placeholders of query into $1, $2, … for PostgreSQL.
// No statement of this package has a ? inside a literal.
func (d Dialect) rebind(query string) string {
	if d != PostgreSQL {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range []byte(query) {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
