package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/sqltest"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

const recordSize = 2 << 10 // a ratchet state with a few skipped keys

func benchLoadSave(b *testing.B, s store.Store) {
	ctx := context.Background()
	a := store.Address{Name: "alice", DeviceID: 1}
	rec := make([]byte, recordSize)
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, a, rec) }); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(recordSize)
	b.ReportAllocs()
	for b.Loop() {
		err := s.Update(ctx, func(tx store.Tx) error {
			r, err := tx.Sessions().Load(ctx, a)
			if err != nil {
				return err
			}
			r[0]++
			return tx.Sessions().Save(ctx, a, r)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSQLiteLoadSave is the store's share of a decryption on SQLite:
// load a ~2 KiB session record and save its successor, in one Update.
// FULL syncs the WAL at every commit; NORMAL and OFF don't, which leaves
// the CPU cost of the transaction.
func BenchmarkSQLiteLoadSave(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL", "OFF"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			db := openDB(b, "sqlite", sqltest.SQLiteDSN(filepath.Join(b.TempDir(), "bench.db"), sync))
			benchLoadSave(b, mustOpen(b, db, sqlstore.SQLite))
		})
	}
}

// BenchmarkSQLiteLoadSaveFloor is the same transaction in plain
// database/sql with prepared statements, without the store: the SQLite
// floor.
func BenchmarkSQLiteLoadSaveFloor(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			ctx := context.Background()
			db := openDB(b, "sqlite", sqltest.SQLiteDSN(filepath.Join(b.TempDir(), "floor.db"), sync))
			if _, err := db.ExecContext(ctx, "CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB NOT NULL)"); err != nil {
				b.Fatal(err)
			}
			k := []byte("alice\x00\x00\x00\x01")
			if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (?, ?)", k, make([]byte, recordSize)); err != nil {
				b.Fatal(err)
			}
			load, err := db.PrepareContext(ctx, "SELECT v FROM t WHERE k = ?")
			if err != nil {
				b.Fatal(err)
			}
			save, err := db.PrepareContext(ctx, "UPDATE t SET v = ? WHERE k = ?")
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(recordSize)
			b.ReportAllocs()
			for b.Loop() {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				var r []byte
				if err := tx.StmtContext(ctx, load).QueryRowContext(ctx, k).Scan(&r); err != nil {
					b.Fatal(err)
				}
				r[0]++
				if _, err := tx.StmtContext(ctx, save).ExecContext(ctx, r, k); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFsync writes and syncs one 4 KiB page, as a WAL commit with
// synchronous=FULL does at least once: the disk's floor.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		page[0]++
		if _, err := f.WriteAt(page, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostgresLoadSave runs the transaction on PostgreSQL, when
// RATCHETKIT_POSTGRES_DSN names one.
func BenchmarkPostgresLoadSave(b *testing.B) {
	var db *sql.DB
	open := postgresBackend.fresh(b)
	db = open(b)
	benchLoadSave(b, mustOpen(b, db, sqlstore.PostgreSQL))
}
