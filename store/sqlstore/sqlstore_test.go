package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

// schemaVersion is the newest schema version, declared here rather than
// read from the package so that adding a migration is a visible change.
const schemaVersion = 3

func version(t testing.TB, db *sql.DB) int {
	t.Helper()
	var rows, v int
	err := db.QueryRowContext(t.Context(), "SELECT COUNT(*), MAX(version) FROM ratchetkit_schema").Scan(&rows, &v)
	if err != nil {
		t.Fatalf("reading the schema version: %v", err)
	}
	if rows != 1 {
		t.Fatalf("ratchetkit_schema has %d rows, want 1", rows)
	}
	return v
}

func TestReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		open := b.fresh(t)
		db := open(t)
		s := mustOpen(t, db, b.dialect)
		if v := version(t, db); v != schemaVersion {
			t.Errorf("schema version %d, want %d", v, schemaVersion)
		}
		ik, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		a := store.Address{Name: "alice", DeviceID: 3}
		err = s.Update(t.Context(), func(tx store.Tx) error {
			return errors.Join(
				tx.Local().Save(t.Context(), &store.LocalIdentity{KeyPair: ik, DeviceID: 1}),
				tx.Sessions().Save(t.Context(), a, []byte("persisted")),
			)
		})
		if err != nil {
			t.Fatal(err)
		}
		// Opening again, on the same pool and on a new one, migrates
		// nothing and finds the data.
		mustOpen(t, db, b.dialect)
		db2 := open(t)
		s2 := mustOpen(t, db2, b.dialect)
		if v := version(t, db2); v != schemaVersion {
			t.Errorf("schema version after reopening: %d", v)
		}
		err = s2.View(t.Context(), func(tx store.Tx) error {
			l, err := tx.Local().Load(t.Context())
			if err != nil {
				return err
			}
			if !l.KeyPair.PrivateKey().Equal(ik.PrivateKey()) {
				t.Error("reopened store has another identity")
			}
			rec, err := tx.Sessions().Load(t.Context(), a)
			if err != nil {
				return err
			}
			if string(rec) != "persisted" {
				t.Errorf("reopened store: record %q", rec)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestSchemaTooNew(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.fresh(t)(t)
		s := mustOpen(t, db, b.dialect)
		// A newer program migrated the database.
		if _, err := db.ExecContext(t.Context(), fmt.Sprintf("UPDATE ratchetkit_schema SET version = %d", schemaVersion+1)); err != nil {
			t.Fatal(err)
		}
		if _, err := sqlstore.Open(t.Context(), db, b.dialect); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Errorf("Open of a newer schema: %v", err)
		}
		called := false
		err := s.Update(t.Context(), func(store.Tx) error { called = true; return nil })
		if err == nil || called {
			t.Errorf("Update on a schema that changed under the store: err %v, fn called %v", err, called)
		}
		if v := version(t, db); v != schemaVersion+1 {
			t.Errorf("the refused Open changed the version to %d", v)
		}
	})
}

func TestUnknownDialect(t *testing.T) {
	if _, err := sqlstore.Open(t.Context(), nil, sqlstore.Dialect(0)); err == nil {
		t.Error("Open with the zero Dialect succeeded")
	}
	if got := sqlstore.Dialect(7).String(); got != "Dialect(7)" {
		t.Errorf("String of an unknown dialect: %q", got)
	}
	if sqlstore.SQLite.String() != "SQLite" || sqlstore.PostgreSQL.String() != "PostgreSQL" {
		t.Error("dialect names")
	}
}

// TestConcurrentOpen opens a new database from several pools at once, as
// several processes starting together would.
func TestConcurrentOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		open := b.fresh(t)
		dbs := make([]*sql.DB, 6)
		for i := range dbs {
			dbs[i] = open(t)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(dbs))
		for i, db := range dbs {
			wg.Go(func() { _, errs[i] = sqlstore.Open(t.Context(), db, b.dialect) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open #%d: %v", i, err)
			}
		}
		if v := version(t, dbs[0]); v != schemaVersion {
			t.Errorf("schema version %d", v)
		}
	})
}

// increment adds one to a counter kept in a's session record.
func increment(ctx context.Context, s store.Store, a store.Address) error {
	return s.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Sessions().Load(ctx, a)
		var c uint64
		switch {
		case err == nil:
			c = binary.BigEndian.Uint64(rec)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return tx.Sessions().Save(ctx, a, binary.BigEndian.AppendUint64(nil, c+1))
	})
}

func counter(t testing.TB, s store.Store, a store.Address) uint64 {
	t.Helper()
	var c uint64
	err := s.View(t.Context(), func(tx store.Tx) error {
		rec, err := tx.Sessions().Load(t.Context(), a)
		if err == nil {
			c = binary.BigEndian.Uint64(rec)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTwoStoresOneDatabase checks that Updates are serialized by the
// database, not only by the Store value: two Stores on two pools, as two
// processes would have, increment one counter without losing a step.
func TestTwoStoresOneDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		open := b.fresh(t)
		stores := []*sqlstore.Store{mustOpen(t, open(t), b.dialect), mustOpen(t, open(t), b.dialect)}
		a := store.Address{Name: "shared", DeviceID: 1}
		const perStore, each = 4, 10
		var wg sync.WaitGroup
		for _, s := range stores {
			for range perStore {
				wg.Go(func() {
					for range each {
						if err := increment(t.Context(), s, a); err != nil {
							t.Errorf("increment: %v", err)
							return
						}
					}
				})
			}
		}
		wg.Wait()
		if c := counter(t, stores[0], a); c != uint64(len(stores)*perStore*each) {
			t.Errorf("counter %d after %d increments", c, len(stores)*perStore*each)
		}
	})
}

// TestSQLiteBusy runs many goroutines on two pools of one SQLite file
// opened without _txlock=immediate, mixing Updates that read before they
// write with Views. Deferred transactions that read first would fail with
// SQLITE_BUSY here; the Store's first statement takes the write lock.
func TestSQLiteBusy(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "busy.db") +
		"?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	stores := []*sqlstore.Store{
		mustOpen(t, openDB(t, "sqlite", dsn), sqlstore.SQLite),
		mustOpen(t, openDB(t, "sqlite", dsn), sqlstore.SQLite),
	}
	const goroutines, each = 32, 8
	var wg sync.WaitGroup
	for g := range goroutines {
		s := stores[g%2]
		wg.Go(func() {
			own := store.Address{Name: fmt.Sprintf("peer-%d", g), DeviceID: uint32(g)}
			shared := store.Address{Name: "shared", DeviceID: 0}
			for i := range each {
				for _, a := range []store.Address{own, shared} {
					if err := increment(t.Context(), s, a); err != nil {
						t.Errorf("goroutine %d, step %d: %v", g, i, err)
						return
					}
				}
				err := s.View(t.Context(), func(tx store.Tx) error {
					_, err := tx.Sessions().Devices(t.Context(), "shared")
					return err
				})
				if err != nil {
					t.Errorf("goroutine %d, View: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c := counter(t, stores[0], store.Address{Name: "shared"}); c != goroutines*each {
		t.Errorf("shared counter %d, want %d", c, goroutines*each)
	}
	for g := range goroutines {
		if c := counter(t, stores[1], store.Address{Name: fmt.Sprintf("peer-%d", g), DeviceID: uint32(g)}); c != each {
			t.Errorf("counter of goroutine %d: %d, want %d", g, c, each)
		}
	}
}
