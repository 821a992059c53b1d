package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ratchetkit/ratchetkit/store"
)

// testOptional checks the optional interfaces a store's transactions
// implement (store.SessionsClearer, store.PreKeyLister), reading their
// own writes; it skips those a store lacks.
func testOptional(t *testing.T, s store.Store) {
	a := store.Address{Name: "bob", DeviceID: 1}
	b := store.Address{Name: "carol", DeviceID: 2}
	saveRecord(t, s, a, []byte("a"))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PreKeys().Add(ctx, newPreKeys(t, 1, 2, 3))
	})
	var lister, clearer bool
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		_, lister = tx.PreKeys().(store.PreKeyLister)
		_, clearer = tx.Sessions().(store.SessionsClearer)
		return nil
	})
	if lister {
		ids := func(ctx context.Context, tx store.Tx, want ...uint32) error {
			got, err := tx.PreKeys().(store.PreKeyLister).IDs(ctx)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				t.Errorf("PreKeys.IDs = %v, want %v", got, want)
			}
			return nil
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.PreKeys().Remove(ctx, 2); err != nil {
				return err
			}
			if err := tx.PreKeys().Add(ctx, newPreKeys(t, 9)); err != nil {
				return err
			}
			return ids(ctx, tx, 1, 3, 9)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error { return ids(ctx, tx, 1, 3, 9) })
	}
	if clearer {
		errRollback := errors.New("roll back")
		clearAll := func(ctx context.Context, tx store.Tx) error {
			if err := tx.Sessions().Save(ctx, b, []byte("b")); err != nil {
				return err
			}
			if err := tx.Sessions().(store.SessionsClearer).DeleteAll(ctx); err != nil {
				return err
			}
			for _, x := range []store.Address{a, b} {
				if _, err := tx.Sessions().Load(ctx, x); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Sessions.Load(%v) after DeleteAll: %v, want ErrNotFound", x, err)
				}
			}
			return nil
		}
		err := s.Update(context.Background(), func(tx store.Tx) error {
			if err := clearAll(context.Background(), tx); err != nil {
				return err
			}
			return errRollback
		})
		if err != errRollback {
			t.Fatal(err)
		}
		if rec := loadRecord(t, s, a); string(rec) != "a" {
			t.Errorf("record %q after a rolled-back DeleteAll, want %q", rec, "a")
		}
		update(t, s, clearAll)
		for _, x := range []store.Address{a, b} {
			if rec := loadRecord(t, s, x); rec != nil {
				t.Errorf("record %q of %v after DeleteAll", rec, x)
			}
		}
	}
	if !lister && !clearer {
		t.Skip("the store implements neither store.PreKeyLister nor store.SessionsClearer")
	}
}
