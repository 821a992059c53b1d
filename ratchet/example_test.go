package ratchet_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
)

// Alice sends three messages; the network delivers the third before the
// second, and then the second again. Alice and Bob live in separate blocks:
// only byte slices pass between them, as they would over a network or
// through storage.
func Example() {
	// The shared secret and associated data come from a key agreement such
	// as X3DH (package x3dh), which also authenticates Bob's prekey. Fixed
	// values stand in for them here.
	sk := sha256.Sum256([]byte("SK from X3DH"))
	ad := []byte("Encode(IK_A) || Encode(IK_B)")

	// Bob publishes a ratchet public key (in X3DH, his signed prekey).
	var bobPrekeyPublic, bobPrekeyPrivate []byte
	{
		k, err := keys.GeneratePrivateKey()
		if err != nil {
			log.Fatal(err)
		}
		bobPrekeyPublic = k.PublicKey().Encode()
		bobPrekeyPrivate = k.Bytes()
	}

	// Alice starts a session and encrypts three messages. She saves her
	// session state to read Bob's reply later.
	var toBob [][]byte
	var aliceState []byte
	{
		bobKey, err := keys.DecodePublicKey(bobPrekeyPublic)
		if err != nil {
			log.Fatal(err)
		}
		alice, err := ratchet.NewInitiator(sk[:], ad, bobKey, nil)
		if err != nil {
			log.Fatal(err)
		}
		for _, text := range []string{"one", "two", "three"} {
			msg, err := alice.Encrypt([]byte(text))
			if err != nil {
				log.Fatal(err)
			}
			toBob = append(toBob, msg)
		}
		if aliceState, err = alice.MarshalBinary(); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("message \"one\": %d bytes\n", len(toBob[0]))
	}

	// Bob receives messages 1, 3, 2 and 2 again, and replies.
	var toAlice []byte
	{
		priv, err := keys.NewPrivateKey(bobPrekeyPrivate)
		if err != nil {
			log.Fatal(err)
		}
		bob, err := ratchet.NewResponder(sk[:], ad, priv, nil)
		if err != nil {
			log.Fatal(err)
		}
		for _, i := range []int{0, 2, 1, 1} {
			pt, err := bob.Decrypt(toBob[i])
			switch {
			case errors.Is(err, ratchet.ErrDuplicate):
				fmt.Println("Bob drops a duplicate")
			case err != nil:
				log.Fatal(err)
			default:
				fmt.Printf("Bob reads %q\n", pt)
			}
		}
		if toAlice, err = bob.Encrypt([]byte("got them")); err != nil {
			log.Fatal(err)
		}
	}

	// Alice restores her session and reads the reply, a DH ratchet step.
	{
		alice, err := ratchet.ParseSession(aliceState)
		if err != nil {
			log.Fatal(err)
		}
		pt, err := alice.Decrypt(toAlice)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("Alice reads %q; she has received: %v\n", pt, alice.HasReceived())
	}
	// Output:
	// message "one": 61 bytes
	// Bob reads "one"
	// Bob reads "three"
	// Bob reads "two"
	// Bob drops a duplicate
	// Alice reads "got them"; she has received: true
}
