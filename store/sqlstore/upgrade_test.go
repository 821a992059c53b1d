package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/internal/sqltest"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/senderkey"
	"github.com/ratchetkit/ratchetkit/store"
)

// TestUpgradeFromVersion1 makes a database of schema version 1 (migration
// 0001 only), writes to it with the statements the version-1 store runs,
// and opens it: Open migrates it to the Kyber prekeys' version, the old
// data reads back unchanged, and the new area works beside it.
func TestUpgradeFromVersion1(t *testing.T) {
	for _, d := range []Dialect{SQLite, PostgreSQL} {
		t.Run(d.String(), func(t *testing.T) {
			var db *sql.DB
			if d == SQLite {
				var err error
				db, err = sql.Open("sqlite", sqltest.SQLiteDSN(filepath.Join(t.TempDir(), "v1.db"), "FULL"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
			} else {
				db = sqltest.PostgresSchema(t, "ratchetkit_upgrade")(t)
			}
			upgradeFromVersion1(t, db, d)
		})
	}
}

func upgradeFromVersion1(t *testing.T, db *sql.DB, d Dialect) {
	ctx := t.Context()
	q := newQueries(d)
	ms, err := loadMigrations(q.dir)
	if err != nil {
		t.Fatal(err)
	}
	old := &Store{db: db, dialect: d, q: q}
	if v, err := old.migrateTo(ctx, ms[:1]); err != nil || v != 1 {
		t.Fatalf("making a version-1 database: %d, %v", v, err)
	}

	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	opk, err := keys.GenerateOneTimePreKeys(5, 1)
	if err != nil {
		t.Fatal(err)
	}
	spkPriv, err := keys.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	sig := ik.Sign(spkPriv.PublicKey().Encode())
	a := store.Address{Name: "alice", DeviceID: 2}
	h, dev := key(a)
	for _, w := range []struct {
		query string
		args  []any
	}{
		{q.localSave, []any{ik.PrivateKey().Bytes(), int64(9)}},
		{d.preKeyInsert(1), []any{int64(5), opk[0].PrivateKey().Bytes()}},
		{q.preKeyBumpLastID, []any{int64(5), int64(5)}},
		{q.signedAdd, []any{int64(3), int64(1_700_000_000), spkPriv.Bytes(), sig}},
		{q.sessionSave, []any{h, dev, []byte(a.Name), []byte("version 1 record")}},
	} {
		if _, err := db.ExecContext(ctx, w.query, w.args...); err != nil {
			t.Fatalf("writing version-1 data: %v", err)
		}
	}

	s, err := Open(ctx, db, d)
	if err != nil {
		t.Fatalf("Open of a version-1 database: %v", err)
	}
	defer s.Close()
	if s.version != len(ms) || len(ms) < 2 {
		t.Fatalf("Open migrated to version %d of %d", s.version, len(ms))
	}
	err = s.View(ctx, func(tx store.Tx) error {
		l, err := tx.Local().Load(ctx)
		if err != nil {
			return err
		}
		if !l.KeyPair.PrivateKey().Equal(ik.PrivateKey()) || l.DeviceID != 9 {
			t.Error("the local identity changed in the upgrade")
		}
		pk, err := tx.PreKeys().Load(ctx, 5)
		if err != nil {
			return err
		}
		if last, err := tx.PreKeys().LastID(ctx); err != nil || last != 5 || !pk.PrivateKey().Equal(opk[0].PrivateKey()) {
			t.Errorf("one-time prekeys after the upgrade: last id %d, %v", last, err)
		}
		spk, err := tx.SignedPreKeys().Load(ctx, 3)
		if err != nil {
			return err
		}
		if !spk.PrivateKey().Equal(spkPriv) || !bytes.Equal(spk.Signature(), sig) || spk.Created().Unix() != 1_700_000_000 {
			t.Error("the signed prekey changed in the upgrade")
		}
		rec, err := tx.Sessions().Load(ctx, a)
		if err != nil {
			return err
		}
		if string(rec) != "version 1 record" {
			t.Errorf("session record %q after the upgrade", rec)
		}
		k, err := store.KyberPreKeysOf(tx)
		if err != nil {
			return err
		}
		one, last, err := k.Count(ctx)
		if err != nil || one != 0 || last != 0 {
			t.Errorf("Kyber prekeys in an upgraded database: %d, %d, %v", one, last, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	kyberAfterUpgrade(t, s, ik, 3, spkPriv.PublicKey())
	senderKeysAfterUpgrade(t, s)

	// Opening again migrates nothing.
	again, err := Open(context.Background(), db, d)
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	var v int
	if err := db.QueryRowContext(ctx, q.schemaVersion).Scan(&v); err != nil || v != len(ms) {
		t.Errorf("schema version %d after reopening, %v", v, err)
	}
}

// TestUpgradeGolden opens testdata/v1.db, which the version-1 store itself
// wrote (testdata/genv1.go), on a copy: Open migrates it, the old rows read
// back, and the Kyber area works.
func TestUpgradeGolden(t *testing.T) {
	ctx := t.Context()
	b, err := os.ReadFile("testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v1.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", sqltest.SQLiteDSN(path, "FULL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRowContext(ctx, "SELECT version FROM ratchetkit_schema").Scan(&v); err != nil || v != 1 {
		t.Fatalf("testdata/v1.db has schema version %d, %v", v, err)
	}
	s, err := Open(ctx, db, SQLite)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	seed := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	ik, _ := keys.NewIdentityKeyPair(seed("v1 identity"))
	opk, _ := keys.NewPrivateKey(seed("v1 one-time prekey 5"))
	spk, _ := keys.NewPrivateKey(seed("v1 signed prekey 3"))
	a := store.Address{Name: "alice", DeviceID: 2}
	err = s.View(ctx, func(tx store.Tx) error {
		l, err := tx.Local().Load(ctx)
		if err != nil {
			return err
		}
		p, err := tx.PreKeys().Load(ctx, 5)
		if err != nil {
			return err
		}
		sp, err := tx.SignedPreKeys().Load(ctx, 3)
		if err != nil {
			return err
		}
		peer, err := tx.Identities().Load(ctx, a)
		if err != nil {
			return err
		}
		rec, err := tx.Sessions().Load(ctx, a)
		if err != nil {
			return err
		}
		if !l.KeyPair.PrivateKey().Equal(ik.PrivateKey()) || l.DeviceID != 9 || !p.PrivateKey().Equal(opk) ||
			!sp.PrivateKey().Equal(spk) || sp.Created().Unix() != 1_700_000_000 || !peer.Equal(ik.PublicKey()) ||
			string(rec) != "version 1 record" {
			t.Error("the upgrade changed version-1 data")
		}
		if err := sp.Verify(ik.PublicKey()); err != nil {
			t.Errorf("signed prekey: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kyberAfterUpgrade(t, s, ik, 3, opk.PublicKey())
	senderKeysAfterUpgrade(t, s)
}

// senderKeysAfterUpgrade checks the sender-key area (migration 0003) on an
// upgraded database: a record saved, read back and deleted.
func senderKeysAfterUpgrade(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	a, id := store.Address{Name: "alice", DeviceID: 2}, senderkey.DistributionID{3}
	err := s.Update(ctx, func(tx store.Tx) error {
		sk, err := store.SenderKeysOf(tx)
		if err != nil {
			return err
		}
		if _, err := sk.Load(ctx, a, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a sender key in an upgraded database: %v", err)
		}
		if err := sk.Save(ctx, a, id, []byte("group record")); err != nil {
			return err
		}
		if rec, err := sk.Load(ctx, a, id); err != nil || string(rec) != "group record" {
			t.Errorf("sender key read back: %q, %v", rec, err)
		}
		return sk.Delete(ctx, a, id)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kyberAfterUpgrade checks the new area on an upgraded database: a
// last-resort Kyber prekey used with signed prekey signedID and base key
// base, the repeat refused, and the triple forgotten with the signed
// prekey.
func kyberAfterUpgrade(t *testing.T, s *Store, ik *keys.IdentityKeyPair, signedID uint32, base *keys.PublicKey) {
	t.Helper()
	ctx := t.Context()
	lr, err := kyber.GeneratePreKey(ik, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	use := func() error {
		return s.Update(ctx, func(tx store.Tx) error {
			return tx.(store.KyberTx).KyberPreKeys().MarkUsed(ctx, 1, signedID, base)
		})
	}
	err = s.Update(ctx, func(tx store.Tx) error { return tx.(store.KyberTx).KyberPreKeys().Add(ctx, []*kyber.PreKey{lr}) })
	if err != nil {
		t.Fatal(err)
	}
	if err := use(); err != nil {
		t.Fatal(err)
	}
	if err := use(); !errors.Is(err, store.ErrReusedBaseKey) {
		t.Fatalf("a repeated triple: %v", err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.SignedPreKeys().Remove(ctx, signedID) }); err != nil {
		t.Fatal(err)
	}
	if err := use(); err != nil {
		t.Fatalf("a triple of a removed signed prekey: %v", err)
	}
}
