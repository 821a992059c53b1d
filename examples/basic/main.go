// Command basic is ratchetkit's smallest demonstration: two identities, a
// signed prekey, and its verification. It grows into the full walkthrough as
// the protocol packages land.
package main

import (
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/keys"
)

func main() {
	alice, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		log.Fatal(err)
	}
	bob, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		log.Fatal(err)
	}
	spk, err := keys.GenerateSignedPreKey(bob, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Bob's identity key: %d bytes encoded\n", len(bob.PublicKey().Encode()))
	fmt.Printf("Bob's signed prekey %d: signature %d bytes\n", spk.ID(), len(spk.Signature()))
	if err := keys.VerifySignedPreKey(bob.PublicKey(), spk.PublicKey(), spk.Signature()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Alice verified the signed prekey under Bob's identity key.")
	a, _ := alice.PrivateKey().ECDH(spk.PublicKey())
	b, _ := spk.PrivateKey().ECDH(alice.PublicKey())
	fmt.Printf("X25519 agreement matches: %v\n", string(a) == string(b))
}
