package session_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/internal/sqltest"
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

func openSQLite(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	return openSQLiteDSN(t, sqltest.SQLiteDSN(path, "FULL"))
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
// cleanup (sqltest.PostgresSchema).
var postgresBackend = backend{
	name:       "PostgreSQL",
	persistent: true,
	fresh: func(t testing.TB) func(testing.TB) store.Store {
		openDB := sqltest.PostgresSchema(t, "ratchetkit_session_test")
		return func(t testing.TB) store.Store {
			db := openDB(t)
			st, err := sqlstore.Open(context.Background(), db, sqlstore.PostgreSQL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	},
}

// newStores lists the backends every store-dependent test runs on.
var newStores = []backend{memoryBackend, sqliteBackend, postgresBackend}

// forEachStore runs f as a subtest per backend.
func forEachStore(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range newStores {
		t.Run(b.name, func(t *testing.T) {
			if b.name == postgresBackend.name {
				sqltest.PostgresConfig(t) // skip here once, not in every subtest
			}
			f(t, b)
		})
	}
}
