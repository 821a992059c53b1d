package session_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// Example walks through a session's whole life: two devices set up their
// identities and prekeys, Alice starts a session from Bob's bundle, they
// exchange messages, Bob's device is reinstalled and Alice has to approve
// its new key. Each device has its own store; only bundles and messages
// pass between them.
func Example() {
	ctx := context.Background()
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	aliceAddr := store.Address{Name: "alice", DeviceID: 1}
	bobAddr := store.Address{Name: "bob", DeviceID: 1}

	// Each device: a store (here in memory; sqlstore for a real one), a
	// Manager, an identity, and prekeys to publish.
	alice, err := session.New(memory.New(), nil)
	check(err)
	check(alice.Init(ctx, aliceAddr.DeviceID))
	bob, err := session.New(memory.New(), nil)
	check(err)
	check(bob.Init(ctx, bobAddr.DeviceID))

	upload, err := bob.Upkeep(ctx)
	check(err)
	fmt.Println("Bob uploads", len(upload.OneTimePreKeys), "one-time prekeys")

	// The server hands Alice a bundle with one of them.
	bundle := upload.Bundle(&upload.OneTimePreKeys[0])
	check(alice.StartSession(ctx, bobAddr, bundle))

	// Until Bob answers, Alice's messages are prekey messages (type 2).
	m1, err := alice.Encrypt(ctx, bobAddr, []byte("Hello, Bob!"))
	check(err)
	m2, err := alice.Encrypt(ctx, bobAddr, []byte("Are you there?"))
	check(err)
	fmt.Println("Alice sends types", m1[0], m2[0])

	// Bob can start from either; here they arrive out of order.
	for _, m := range [][]byte{m2, m1} {
		pt, err := bob.Decrypt(ctx, aliceAddr, m)
		check(err)
		fmt.Printf("Bob reads %q\n", pt)
	}
	st, err := bob.PreKeyStatus(ctx)
	check(err)
	fmt.Println("Bob's one-time prekeys left:", st.OneTimePreKeys)

	// A replay changes nothing and says so.
	_, err = bob.Decrypt(ctx, aliceAddr, m1)
	fmt.Println("replay refused:", err != nil)

	r1, err := bob.Encrypt(ctx, aliceAddr, []byte("Hi Alice"))
	check(err)
	pt, err := alice.Decrypt(ctx, bobAddr, r1)
	check(err)
	fmt.Printf("Alice reads %q\n", pt)

	// Bob has answered: Alice now sends plain ratchet messages (type 1).
	m3, err := alice.Encrypt(ctx, bobAddr, []byte("Great."))
	check(err)
	pt, err = bob.Decrypt(ctx, aliceAddr, m3)
	check(err)
	fmt.Printf("type %d, Bob reads %q\n", m3[0], pt)

	// Both compute the same safety number; comparing them out of band
	// proves that no server substituted a key.
	sa, err := alice.SafetyNumber(ctx, "alice", bobAddr)
	check(err)
	sb, err := bob.SafetyNumber(ctx, "bob", aliceAddr)
	check(err)
	fmt.Println("safety numbers match:", sa == sb, len(sa))

	// Bob reinstalls: new store, new identity key, new bundle.
	bob, err = session.New(memory.New(), nil)
	check(err)
	check(bob.Init(ctx, bobAddr.DeviceID))
	upload, err = bob.Upkeep(ctx)
	check(err)
	err = alice.StartSession(ctx, bobAddr, upload.Bundle(nil))
	var idErr *session.IdentityError
	if errors.As(err, &idErr) {
		fmt.Println("Bob's key changed:", errors.Is(err, session.ErrUntrustedIdentity),
			idErr.Received.Equal(upload.IdentityKey))
		// Alice's user compares the new safety number with Bob, then:
		check(alice.ApproveIdentity(ctx, bobAddr, idErr.Received))
	}
	check(alice.StartSession(ctx, bobAddr, upload.Bundle(nil)))
	m4, err := alice.Encrypt(ctx, bobAddr, []byte("Welcome back"))
	check(err)
	pt, err = bob.Decrypt(ctx, aliceAddr, m4)
	check(err)
	fmt.Printf("Bob reads %q\n", pt)
	// Output:
	// Bob uploads 100 one-time prekeys
	// Alice sends types 2 2
	// Bob reads "Are you there?"
	// Bob reads "Hello, Bob!"
	// Bob's one-time prekeys left: 99
	// replay refused: true
	// Alice reads "Hi Alice"
	// type 1, Bob reads "Great."
	// safety numbers match: true 71
	// Bob's key changed: true true
	// Bob reads "Welcome back"
}

// ExampleSafetyNumber computes the number two users compare, here for the
// RFC 7748 example keys. Each user's app shows the same digits.
func ExampleSafetyNumber() {
	aliceKey, _ := keys.DecodePublicKey(mustHex("058520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
	bobKey, _ := keys.DecodePublicKey(mustHex("05de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
	fmt.Println(session.SafetyNumber("alice", aliceKey, "bob", bobKey))
	fmt.Println(session.SafetyNumber("bob", bobKey, "alice", aliceKey))
	// Output:
	// 60195 48877 36947 97195 12074 86793 98047 74064 68498 39406 16994 68737
	// 60195 48877 36947 97195 12074 86793 98047 74064 68498 39406 16994 68737
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
