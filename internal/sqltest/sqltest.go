// Package sqltest gives ratchetkit's tests the databases package sqlstore
// runs on: the SQLite DSN its documentation recommends, and a fresh
// PostgreSQL schema per test on the server RATCHETKIT_POSTGRES_DSN names.
// Only tests import it; it registers no driver (tests import modernc's
// themselves) and uses pgx's database/sql adapter.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// SQLiteDSN is the modernc.org/sqlite DSN package sqlstore recommends for
// the file at path, with the synchronous pragma given ("FULL", "NORMAL",
// "OFF").
func SQLiteDSN(path, synchronous string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + synchronous + ")&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_txlock=immediate"
}

var (
	pgConfigOnce sync.Once
	pgConfig     *pgx.ConnConfig
	pgConfigErr  error
)

// PostgresConfig returns the configuration RATCHETKIT_POSTGRES_DSN names.
// Without one the test is skipped, or fails if RATCHETKIT_REQUIRE_POSTGRES
// is 1, as in CI.
func PostgresConfig(t testing.TB) *pgx.ConnConfig {
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

// PostgresSchema makes a new, empty schema on the test server, named after
// prefix, the process and a random suffix and dropped at t's cleanup, so
// that runs never see each other's tables. It returns a function that opens
// a new connection pool whose search_path is that schema each time it is
// called (as a restarted process would); each pool is closed at the
// cleanup of the test that opened it.
func PostgresSchema(t testing.TB, prefix string) (open func(t testing.TB) *sql.DB) {
	t.Helper()
	cfg := PostgresConfig(t)
	admin := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { admin.Close() })
	var suffix [6]byte
	rand.Read(suffix[:])
	schema := fmt.Sprintf("%s_%d_%s", prefix, os.Getpid(), hex.EncodeToString(suffix[:]))
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
}
