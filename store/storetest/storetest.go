// Package storetest is the conformance suite for [store.Store]
// implementations. Every implementation in ratchetkit passes it, and a
// third-party one should too:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openMyStore(t) })
//	}
//
// The suite checks the contracts documented in package store: the
// not-found and already-exists errors, what Identities.Save reports, prekeys
// consumed once even under concurrent transactions, atomic rollback when fn
// fails, panics or outlives its context, read-only Views, serializable
// Updates and snapshot Views, binary-safe names and records, large records,
// and errors that carry no key bytes; and, on a store whose transactions
// implement store.KyberTx, the Kyber prekeys: both kinds' round trip,
// all-or-nothing Adds, MarkUsed removing one-time prekeys and refusing a
// repeated triple on last-resort ones, once under concurrent transactions,
// the triples forgotten with the prekeys they name, rollback and read-only
// Views; and, on a store whose transactions implement store.SenderKeyTx,
// the sender-key records: by address and distribution id, copies in and
// out, rollback, read-only Views and a group decrypt that saves only on
// success. It runs goroutines; run it with -race.
// With -short it runs fewer iterations of the concurrency tests.
//
// [RunScript] complements it: it runs arbitrary transaction scripts on a
// store and on a reference implementation and compares every result,
// which makes a fuzz target out of any store; [RunSenderKeyScript] does
// the same for the sender-key area, and Run runs its seeds and a seeded
// random script on stores that have one.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

// Run runs the conformance suite, one subtest per property. newStore must
// return a new, empty store each time it is called; it may register
// cleanups on the t it is given.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Local", testLocal},
		{"Identities", testIdentities},
		{"PreKeys", testPreKeys},
		{"PreKeysAddAllOrNothing", testPreKeysAddAllOrNothing},
		{"SignedPreKeys", testSignedPreKeys},
		{"Sessions", testSessions},
		{"Devices", testDevices},
		{"BinarySafe", testBinarySafe},
		{"LargeRecord", testLargeRecord},
		{"ReadYourWrites", testReadYourWrites},
		{"Commit", testCommit},
		{"RollbackOnError", testRollbackOnError},
		{"RollbackOnPanic", testRollbackOnPanic},
		{"RollbackOnCanceledContext", testRollbackOnCanceledContext},
		{"DecryptCommitPattern", testDecryptCommitPattern},
		{"ViewIsReadOnly", testViewIsReadOnly},
		{"TxUnusableAfterEnd", testTxUnusableAfterEnd},
		{"ContextDoneBeforeStart", testContextDoneBeforeStart},
		{"ContextDoneInMethod", testContextDoneInMethod},
		{"WaitForWriterHonorsContext", testWaitForWriterHonorsContext},
		{"ConsumeOnce", testConsumeOnce},
		{"ConsumeOnceMany", testConsumeOnceMany},
		{"NoLostUpdates", testNoLostUpdates},
		{"ViewIsolation", testViewIsolation},
		{"ViewSnapshot", testViewSnapshot},
		{"ErrorsHoldNoSecrets", testErrorsHoldNoSecrets},
		{"Optional", testOptional},
	}
	tests = append(tests, kyberTests...)
	tests = append(tests, senderKeyTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(t, s)
		})
	}
}

// testTimeout bounds every wait in the suite, so that a store that deadlocks
// fails its test instead of hanging the run.
const testTimeout = 60 * time.Second

func update(t testing.TB, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t testing.TB, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.View(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func wantNotFound(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: got error %v, want one wrapping store.ErrNotFound", what, err)
	}
}

func wantExists(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("%s: got error %v, want one wrapping store.ErrExists", what, err)
	}
}

func newIdentity(t testing.TB) *keys.IdentityKeyPair {
	t.Helper()
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return ik
}

func newPublicKey(t testing.TB) *keys.PublicKey {
	t.Helper()
	k, err := keys.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

// newPreKeys returns one-time prekeys with the given ids.
func newPreKeys(t testing.TB, ids ...uint32) []*keys.OneTimePreKey {
	t.Helper()
	out := make([]*keys.OneTimePreKey, len(ids))
	for i, id := range ids {
		k, err := keys.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = keys.NewOneTimePreKey(id, k)
	}
	return out
}

// newSignedPreKey returns a signed prekey with the given id and creation
// time, signed by ik.
func newSignedPreKey(t testing.TB, ik *keys.IdentityKeyPair, id uint32, created time.Time) *keys.SignedPreKey {
	t.Helper()
	k, err := keys.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	spk, err := keys.NewSignedPreKey(id, k, ik.Sign(k.PublicKey().Encode()), created)
	if err != nil {
		t.Fatal(err)
	}
	return spk
}
