package sqlstore_test

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

	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

// A backend makes fresh, empty databases of one dialect.
type backend struct {
	name    string
	dialect sqlstore.Dialect
	// fresh makes a new database and returns a function that opens a new
	// connection pool to it each time it is called.
	fresh func(t testing.TB) (open func(t testing.TB) *sql.DB)
}

var sqliteBackend = backend{
	name:    "SQLite",
	dialect: sqlstore.SQLite,
	fresh: func(t testing.TB) func(testing.TB) *sql.DB {
		dsn := sqliteDSN(filepath.Join(t.TempDir(), "store.db"), "FULL")
		return func(t testing.TB) *sql.DB { return openDB(t, "sqlite", dsn) }
	},
}

// sqliteDSN is the DSN the package documentation recommends, with the
// synchronous setting as a parameter.
func sqliteDSN(path, synchronous string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + synchronous + ")&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_txlock=immediate"
}

func openDB(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// postgresBackend gives each fresh database its own schema, named after
// the process and a random suffix and dropped at cleanup, so that runs
// never see each other's tables.
var postgresBackend = backend{
	name:    "PostgreSQL",
	dialect: sqlstore.PostgreSQL,
	fresh: func(t testing.TB) func(testing.TB) *sql.DB {
		cfg := postgresConfig(t)
		admin := stdlib.OpenDB(*cfg)
		t.Cleanup(func() { admin.Close() })
		var suffix [6]byte
		rand.Read(suffix[:])
		schema := fmt.Sprintf("ratchetkit_test_%d_%s", os.Getpid(), hex.EncodeToString(suffix[:]))
		ctx := context.Background()
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("PostgreSQL at RATCHETKIT_POSTGRES_DSN: %v", err)
		}
		t.Cleanup(func() {
			if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				t.Errorf("dropping the test schema: %v", err)
			}
		})
		return func(t testing.TB) *sql.DB {
			c := cfg.Copy()
			c.RuntimeParams["search_path"] = schema
			db := stdlib.OpenDB(*c)
			t.Cleanup(func() { db.Close() })
			return db
		}
	},
}

var (
	pgConfigOnce sync.Once
	pgConfig     *pgx.ConnConfig
	pgConfigErr  error
)

// postgresConfig returns the configuration RATCHETKIT_POSTGRES_DSN names.
// Without one, the test is skipped, or fails if RATCHETKIT_REQUIRE_POSTGRES
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

var backends = []backend{sqliteBackend, postgresBackend}

// forEachBackend runs f as a subtest for each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.dialect == sqlstore.PostgreSQL {
				postgresConfig(t) // skip here once, not in every subtest
			}
			f(t, b)
		})
	}
}

func mustOpen(t testing.TB, db *sql.DB, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), db, d)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// sqlOpen opens a SQLite pool outside a test, for the crash child.
func sqlOpen(dsn string) (*sql.DB, error) { return sql.Open("sqlite", dsn) }
