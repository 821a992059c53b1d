package session_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

// A backend makes fresh, empty stores of one kind.
type backend struct {
	name string
	// fresh makes a new, empty database and returns a function that opens
	// a store on it each time it is called: a new connection pool for the
	// SQL backends (as a restarted process would), the same store for
	// the memory backend, which cannot be reopened.
	fresh func(t testing.TB) (open func(t testing.TB) store.Store)
	// persistent says whether open really reopens the database.
	persistent bool
}

var memoryBackend = backend{
	name: "memory",
	fresh: func(t testing.TB) func(testing.TB) store.Store {
		st := memory.New()
		return func(testing.TB) store.Store { return st }
	},
}

var sqliteBackend = backend{
	name:       "SQLite",
	persistent: true,
	fresh: func(t testing.TB) func(testing.TB) store.Store {
		path := filepath.Join(t.TempDir(), "session.db")
		return func(t testing.TB) store.Store { return openSQLite(t, path) }
	},
}

// sqliteDSN is the DSN package sqlstore recommends.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_txlock=immediate"
}

func openSQLite(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	return openSQLiteDSN(t, sqliteDSN(path))
}

func openSQLiteDSN(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	st, closeFn, err := openSQLiteNoTest(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return st
}

func openSQLiteNoTest(dsn string) (*sqlstore.Store, func(), error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlstore.Open(context.Background(), db, sqlstore.SQLite)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return st, func() { st.Close(); db.Close() }, nil
}

// postgresBackend gives each fresh database its own schema, dropped at
// cleanup, so that runs never see each other's tables.
var postgresBackend = backend{
	name:       "PostgreSQL",
	persistent: true,
	fresh: func(t testing.TB) func(testing.TB) store.Store {
		cfg := postgresConfig(t)
		admin := stdlib.OpenDB(*cfg)
		t.Cleanup(func() { admin.Close() })
		var suffix [6]byte
		rand.Read(suffix[:])
		schema := fmt.Sprintf("ratchetkit_session_test_%d_%s", os.Getpid(), hex.EncodeToString(suffix[:]))
		ctx := context.Background()
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("PostgreSQL at RATCHETKIT_POSTGRES_DSN: %v", err)
		}
		t.Cleanup(func() {
			if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				t.Errorf("dropping the test schema: %v", err)
			}
		})
		return func(t testing.TB) store.Store {
			c := cfg.Copy()
			c.RuntimeParams["search_path"] = schema
			db := stdlib.OpenDB(*c)
			st, err := sqlstore.Open(ctx, db, sqlstore.PostgreSQL)
			if err != nil {
				db.Close()
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close(); db.Close() })
			return st
		}
	},
}

var (
	pgConfigOnce sync.Once
	pgConfig     *pgx.ConnConfig
	pgConfigErr  error
)

// postgresConfig returns the configuration RATCHETKIT_POSTGRES_DSN names.
// Without one the test is skipped, or fails if RATCHETKIT_REQUIRE_POSTGRES
// is 1, as in CI.
func postgresConfig(t testing.TB) *pgx.ConnConfig {
	t.Helper()
	dsn := os.Getenv("RATCHETKIT_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("RATCHETKIT_REQUIRE_POSTGRES") == "1" {
			t.Fatal("RATCHETKIT_REQUIRE_POSTGRES=1 but RATCHETKIT_POSTGRES_DSN is empty")
		}
		t.Skip("PostgreSQL tests skipped: set RATCHETKIT_POSTGRES_DSN " +
			"(postgres://user:password@127.0.0.1:5432/db?sslmode=disable) to run them; .ci/run does")
	}
	pgConfigOnce.Do(func() { pgConfig, pgConfigErr = pgx.ParseConfig(dsn) })
	if pgConfigErr != nil {
		// The DSN may hold a password: don't print it.
		t.Fatal("RATCHETKIT_POSTGRES_DSN does not parse")
	}
	return pgConfig
}

// newStores lists the backends every store-dependent test runs on.
var newStores = []backend{memoryBackend, sqliteBackend, postgresBackend}

// forEachStore runs f as a subtest per backend.
func forEachStore(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range newStores {
		t.Run(b.name, func(t *testing.T) {
			if b.name == postgresBackend.name {
				postgresConfig(t) // skip here once, not in every subtest
			}
			f(t, b)
		})
	}
}
