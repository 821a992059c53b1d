// Package sqlstore is a [store.Store] over database/sql, for SQLite and
// PostgreSQL. It imports no driver: the application opens the *sql.DB with
// the driver it chose and hands it to [Open] with the matching [Dialect].
//
// # Schema and migrations
//
// Open creates the tables on first use and migrates older schemas, in one
// transaction, recording the version in the ratchetkit_schema table. It is
// idempotent and safe to run from several processes at once; it refuses a
// database whose schema is newer than the package. All tables start with
// ratchetkit_, so they can share a database with the application's own.
// Version 2 added the Signal protocol's Kyber prekeys and their used
// triples (three new tables; nothing else changes), so a version-1
// database gains them on its first Open by this package, after which a
// process still running the older package refuses to write to it.
// Version 3 added the Sender Key records of groups (one new table), in the
// same way.
// One database (SQLite file, or PostgreSQL schema) holds one device's
// store; to keep several, give each its own file, or its own PostgreSQL
// schema through the search_path connection parameter.
//
// # Transactions
//
// Update transactions run one at a time. In the process, a Store queues
// them itself, so goroutines wait their turn without tying up connections
// or spinning on SQLITE_BUSY; across processes, each Update starts by
// locking the schema row (a row lock on PostgreSQL, the write lock on
// SQLite). Reads inside an Update therefore see the latest committed data
// and nothing changes under them. View transactions are read-only
// snapshots (REPEATABLE READ on PostgreSQL) and do not wait for writers.
//
// Open prepares the statements transactions run, once, because SQLite
// drivers keep no statement cache and parsing cost a fifth of a
// transaction's CPU; [Store.Close] releases them.
//
// # Performance
//
// On SQLite, a transaction that loads and saves a 2 KiB session record
// makes one fsync (of the write-ahead log, with synchronous=FULL), two
// writes and six file-lock calls, the same as the bare database/sql
// transaction. With FULL the fsync dominates (a few hundred microseconds
// on an ordinary disk); without it, the transaction costs tens of
// microseconds of CPU, a third of it taking and releasing the WAL locks.
//
// # SQLite
//
// With modernc.org/sqlite, open the database with a DSN like
//
//	file:/path/to/ratchetkit.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_txlock=immediate
//
// Pragmas are per connection and database/sql keeps a pool, which is why
// they belong in the DSN rather than in a statement run once:
//
//   - journal_mode(WAL): readers and the writer don't block each other, and
//     a commit appends to the log instead of rewriting pages in place.
//   - busy_timeout: how long a connection waits for another process's lock
//     before failing with SQLITE_BUSY. Without it, any contention between
//     processes fails at once.
//   - synchronous(FULL): every commit waits for the log to reach the disk.
//     NORMAL skips that wait (the log is synced at checkpoints) and is still
//     safe against a crash of the process, but a power loss may undo the
//     last commits. For a ratchet that can be worse than lost data: if the
//     state that advanced a sending chain is undone after its message left,
//     the next message reuses the same message key, and with AES-GCM that
//     means a repeated key and nonce. Keep FULL unless the application
//     commits before sending and accepts the risk. (The same goes for
//     synchronous_commit on PostgreSQL, which must stay on.)
//   - secure_delete(1): deleted rows are overwritten with zeros, so a
//     consumed one-time prekey or a replaced ratchet state does not linger
//     in free pages. Old pages can still sit in the WAL file until it is
//     checkpointed and overwritten.
//   - foreign_keys(1): the schema declares none today; turning it on keeps
//     a later migration's constraints enforced.
//   - _txlock=immediate: write transactions take the write lock when they
//     begin. The Store's first statement does that anyway; the setting
//     extends it to the application's own transactions on the same pool.
//
// Don't use a :memory: database: it is private to one connection, and a
// pool of one would make Views wait for Updates (and deadlock an fn that
// opens a View). Tests can use a file in a temporary directory, or the
// memory store.
//
// # Secrets
//
// Rows hold private keys and ratchet states. The package writes them as
// they are; encrypting them at rest is the application's job (see package
// store). Errors name the operation and carry the driver's message, which
// never includes the bound key or record bytes.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/store"
)

// Store is a [store.Store] in a SQL database. It is safe for concurrent
// use. Closing the *sql.DB is the caller's business.
type Store struct {
	db      *sql.DB
	dialect Dialect
	q       *queries
	version int
	// writer is a one-slot semaphore held by the running Update.
	writer chan struct{}
	// stmts holds the fixed statements, prepared at Open: SQLite drivers
	// keep no statement cache, and parsing was a fifth of an Update's CPU.
	stmts map[string]*sql.Stmt
}

var _ store.Store = (*Store)(nil)

// Open returns a Store over db, creating or migrating its schema first.
func Open(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	q := newQueries(d)
	if q == nil {
		return nil, fmt.Errorf("sqlstore: unknown dialect %v", d)
	}
	s := &Store{db: db, dialect: d, q: q, writer: make(chan struct{}, 1)}
	v, err := s.migrate(ctx)
	if err != nil {
		return nil, err
	}
	s.version = v
	// Prepared here, while no transaction holds a connection: preparing
	// later on the pool could wait forever for a pool of one.
	s.stmts = make(map[string]*sql.Stmt)
	for _, query := range q.prepared() {
		st, err := db.PrepareContext(ctx, query)
		if err != nil {
			s.Close()
			return nil, s.fail(ctx, "prepare", err)
		}
		s.stmts[query] = st
	}
	return s, nil
}

// Close releases the statements the Store prepared. It does not close the
// *sql.DB. A closed Store's transactions fail.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// stmt returns the prepared form of query bound to tx. The driver prepares
// it once per connection; database/sql remembers which.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	// Every query a transaction runs is in queries.prepared; should one be
	// missing, prepare it for this transaction only.
	return tx.PrepareContext(ctx, query)
}

// Update implements [store.Store.Update].
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()

	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, "begin", err)
	}
	t := &tx{s: s, tx: sqlTx, write: true}
	committed := false
	// Deferred so that a panicking fn rolls back too.
	defer func() {
		t.done = true
		if !committed {
			sqlTx.Rollback()
		}
	}()
	var version int
	lock, err := s.stmt(ctx, sqlTx, s.q.lock)
	if err == nil {
		err = lock.QueryRowContext(ctx).Scan(&version)
	}
	if err != nil {
		return s.fail(ctx, "lock", err)
	}
	if version != s.version {
		return fmt.Errorf("sqlstore: the schema changed to version %d after Open (version %d)", version, s.version)
	}
	if err := fn(t); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	committed = true
	if err := sqlTx.Commit(); err != nil {
		return s.fail(ctx, "commit", err)
	}
	return nil
}

// View implements [store.Store.View].
func (s *Store) View(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect == PostgreSQL {
		// One snapshot for the whole transaction, not one per statement.
		opts.Isolation = sql.LevelRepeatableRead
	}
	sqlTx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return s.fail(ctx, "begin", err)
	}
	t := &tx{s: s, tx: sqlTx}
	defer func() {
		t.done = true
		sqlTx.Rollback()
	}()
	return fn(t)
}

var (
	errReadOnly = errors.New("sqlstore: write in a read-only transaction")
	errDone     = errors.New("sqlstore: transaction used after it ended")
	errNilKey   = errors.New("sqlstore: nil key")
)
