package sqlstore_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/internal/sqltest"
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
		dsn := sqltest.SQLiteDSN(filepath.Join(t.TempDir(), "store.db"), "FULL")
		return func(t testing.TB) *sql.DB { return openDB(t, "sqlite", dsn) }
	},
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

// postgresBackend gives each fresh database its own schema, dropped at
// cleanup (sqltest.PostgresSchema).
var postgresBackend = backend{
	name:    "PostgreSQL",
	dialect: sqlstore.PostgreSQL,
	fresh: func(t testing.TB) func(testing.TB) *sql.DB {
		return sqltest.PostgresSchema(t, "ratchetkit_test")
	},
}

var backends = []backend{sqliteBackend, postgresBackend}

// forEachBackend runs f as a subtest for each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.dialect == sqlstore.PostgreSQL {
				sqltest.PostgresConfig(t) // skip here once, not in every subtest
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
