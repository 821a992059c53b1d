//go:build ignore

// genv1 wrote v1.db, a SQLite database made by the version-1 store (schema
// version 1, before the Kyber prekeys), for TestUpgradeGolden. It must run
// against that code, not this checkout's, so it was run as
//
//	git archive 867d378 | tar -x -C "$tmp" && cp genv1.go "$tmp/cmd/genv1/main.go"
//	(cd "$tmp" && go run ./cmd/genv1 "$PWD/v1.db")
//
// Its keys come from fixed seeds, which the test derives again.
package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"log"
	"os"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

func seed(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func main() {
	path := os.Args[1]
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(DELETE)&_pragma=secure_delete(1)&_txlock=immediate")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	s, err := sqlstore.Open(ctx, db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	ik, _ := keys.NewIdentityKeyPair(seed("v1 identity"))
	opk, _ := keys.NewPrivateKey(seed("v1 one-time prekey 5"))
	spkPriv, _ := keys.NewPrivateKey(seed("v1 signed prekey 3"))
	spk, err := keys.NewSignedPreKey(3, spkPriv, ik.Sign(spkPriv.PublicKey().Encode()), time.Unix(1_700_000_000, 0))
	if err != nil {
		log.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: 9}); err != nil {
			return err
		}
		if err := tx.PreKeys().Add(ctx, []*keys.OneTimePreKey{keys.NewOneTimePreKey(5, opk)}); err != nil {
			return err
		}
		if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
			return err
		}
		if _, err := tx.Identities().Save(ctx, store.Address{Name: "alice", DeviceID: 2}, ik.PublicKey()); err != nil {
			return err
		}
		return tx.Sessions().Save(ctx, store.Address{Name: "alice", DeviceID: 2}, []byte("version 1 record"))
	})
	if err != nil {
		log.Fatal(err)
	}
	s.Close()
	if _, err := db.Exec("VACUUM"); err != nil {
		log.Fatal(err)
	}
	db.Close()
}
