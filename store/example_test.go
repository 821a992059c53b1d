package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// Example walks a device's store through its life: set up an identity and
// prekeys, commit the writes that follow a successful decryption, and see a
// failed one leave no trace.
func Example() {
	ctx := context.Background()
	var st store.Store = memory.New()

	// First start: an identity, a signed prekey and a batch of one-time
	// prekeys, in one transaction.
	err := st.Update(ctx, func(tx store.Tx) error {
		ik, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			return err
		}
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: 1}); err != nil {
			return err
		}
		spk, err := keys.GenerateSignedPreKey(ik, 1)
		if err != nil {
			return err
		}
		if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
			return err
		}
		last, err := tx.PreKeys().LastID(ctx)
		if err != nil {
			return err
		}
		opks, err := keys.GenerateOneTimePreKeys(last+1, 100)
		if err != nil {
			return err
		}
		return tx.PreKeys().Add(ctx, opks)
	})
	if err != nil {
		log.Fatal(err)
	}

	// A prekey message from alice's device 1 named one-time prekey 42 and
	// decrypted. Save the session, consume the prekey, trust her identity
	// key: all together.
	alice := store.Address{Name: "alice", DeviceID: 1}
	aliceKey, _ := keys.GeneratePrivateKey()
	accept := func(tx store.Tx, record []byte) error {
		if _, err := tx.PreKeys().Load(ctx, 42); err != nil {
			return err
		}
		// ... X3DH and the first decryption happen here ...
		if err := tx.Sessions().Save(ctx, alice, record); err != nil {
			return err
		}
		if err := tx.PreKeys().Remove(ctx, 42); err != nil {
			return err
		}
		changed, err := tx.Identities().Save(ctx, alice, aliceKey.PublicKey())
		if err != nil {
			return err
		}
		if changed {
			return errors.New("identity changed: ask the user")
		}
		return nil
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return accept(tx, []byte("session v1")) }); err != nil {
		log.Fatal(err)
	}

	// The same message again: the prekey is gone, so the transaction fails
	// and its session write is rolled back.
	err = st.Update(ctx, func(tx store.Tx) error { return accept(tx, []byte("replayed")) })
	fmt.Println("replay refused:", errors.Is(err, store.ErrNotFound))

	err = st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Sessions().Load(ctx, alice)
		if err != nil {
			return err
		}
		n, err := tx.PreKeys().Count(ctx)
		if err != nil {
			return err
		}
		devices, err := tx.Sessions().Devices(ctx, "alice")
		if err != nil {
			return err
		}
		fmt.Printf("%v: %q, devices %v, %d one-time prekeys left\n", alice, rec, devices, n)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// replay refused: true
	// "alice".1: "session v1", devices [1], 99 one-time prekeys left
}
