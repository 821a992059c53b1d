package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

// Example keeps a session record in a SQLite file and finds it again after
// the database is closed and reopened, as after a restart.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ratchetkit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The settings the package documentation recommends.
	dsn := "file:" + filepath.Join(dir, "store.db") +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_txlock=immediate"
	bob := store.Address{Name: "bob", DeviceID: 1}

	open := func() (*sql.DB, *sqlstore.Store) {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			log.Fatal(err)
		}
		st, err := sqlstore.Open(ctx, db, sqlstore.SQLite) // creates or migrates the schema
		if err != nil {
			log.Fatal(err)
		}
		return db, st
	}

	db, st := open()
	err = st.Update(ctx, func(tx store.Tx) error {
		return tx.Sessions().Save(ctx, bob, []byte("ratchet state"))
	})
	if err != nil {
		log.Fatal(err)
	}
	st.Close()
	db.Close()

	db, st = open()
	defer db.Close()
	defer st.Close()
	err = st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Sessions().Load(ctx, bob)
		if err != nil {
			return err
		}
		fmt.Printf("after reopening: %v has %q\n", bob, rec)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// after reopening: "bob".1 has "ratchet state"
}

// ExampleOpen_postgreSQL opens a store on PostgreSQL through pgx's
// database/sql driver, in a schema of its own chosen with search_path, so
// that one database can hold the stores of several accounts.
func ExampleOpen_postgreSQL() {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = "account_42" // created beforehand with CREATE SCHEMA
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	st, err := sqlstore.Open(ctx, db, sqlstore.PostgreSQL)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	err = st.View(ctx, func(tx store.Tx) error {
		n, err := tx.PreKeys().Count(ctx)
		fmt.Println(n, "one-time prekeys left")
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}
