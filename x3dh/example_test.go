package x3dh_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/aead"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// Alice starts a session with Bob while he is offline. Each party lives in
// its own block; only byte slices pass between them, through the server
// (the bundle) and the network (the first message).
func Example() {
	// What the server stores and the network carries.
	var bundle, message []byte

	// Bob's device storage, touched only by Bob's blocks.
	var bob struct {
		ik   *keys.IdentityKeyPair
		spk  *keys.SignedPreKey
		opks map[uint32]*keys.OneTimePreKey
	}

	{
		// Bob: make his keys and upload a bundle. The server gives each
		// one-time prekey to one initiator only; here it hands out id 100.
		var err error
		if bob.ik, err = keys.GenerateIdentityKeyPair(); err != nil {
			log.Fatal(err)
		}
		if bob.spk, err = keys.GenerateSignedPreKey(bob.ik, 1); err != nil {
			log.Fatal(err)
		}
		batch, err := keys.GenerateOneTimePreKeys(100, 10)
		if err != nil {
			log.Fatal(err)
		}
		bob.opks = map[uint32]*keys.OneTimePreKey{}
		for _, k := range batch {
			bob.opks[k.ID()] = k
		}
		bundle, err = (&x3dh.Bundle{
			IdentityKey:           bob.ik.PublicKey(),
			SignedPreKeyID:        bob.spk.ID(),
			SignedPreKey:          bob.spk.PublicKey(),
			SignedPreKeySignature: bob.spk.Signature(),
			OneTimePreKeyID:       batch[0].ID(),
			OneTimePreKey:         batch[0].PublicKey(),
		}).MarshalBinary()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("Bob's bundle: %d bytes\n", len(bundle))
	}

	{
		// Alice: fetch the bundle and run X3DH. Whether the bundle's
		// identity key really is Bob's is for the application to decide
		// (safety numbers, trust on first use).
		alice, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			log.Fatal(err)
		}
		b, err := x3dh.ParseBundle(bundle)
		if err != nil {
			log.Fatal(err)
		}
		in, err := x3dh.Initiate(alice, b, nil)
		if err != nil {
			log.Fatal(err)
		}
		// The first message is the header and a ciphertext. A real session
		// hands SK and AD to the Double Ratchet; to keep this short, SK
		// seals one message directly.
		if message, err = in.Header.AppendBinary(nil); err != nil {
			log.Fatal(err)
		}
		headerLen := len(message)
		message = aead.AES256GCM().Seal(message, in.SK[:], []byte("Hi Bob!"), in.AD[:])
		in.Clear()
		fmt.Printf("Alice sends a %d-byte header and %d bytes of ciphertext\n", headerLen, len(message)-headerLen)
	}

	{
		// Bob: parse the header, look up the prekeys it names, agree, and
		// delete the one-time prekey only once the message has decrypted.
		h, ciphertext, err := x3dh.ParseHeader(message)
		if err != nil {
			log.Fatal(err)
		}
		var opk *keys.OneTimePreKey
		if h.HasOneTimePreKey {
			if opk = bob.opks[h.OneTimePreKeyID]; opk == nil {
				log.Fatal("unknown one-time prekey")
			}
		}
		if h.SignedPreKeyID != bob.spk.ID() {
			log.Fatal("unknown signed prekey")
		}
		resp, err := x3dh.Respond(bob.ik, bob.spk, opk, h, nil)
		if err != nil {
			log.Fatal(err)
		}
		plaintext, err := aead.AES256GCM().Open(nil, resp.SK[:], ciphertext, resp.AD[:])
		resp.Clear()
		if err != nil {
			log.Fatal(err)
		}
		delete(bob.opks, h.OneTimePreKeyID)
		fmt.Printf("Bob reads %q with one-time prekey %d; %d left\n", plaintext, h.OneTimePreKeyID, len(bob.opks))
	}

	// Output:
	// Bob's bundle: 173 bytes
	// Alice sends a 75-byte header and 23 bytes of ciphertext
	// Bob reads "Hi Bob!" with one-time prekey 100; 9 left
}

// A server can check bundles when they are uploaded, with the same checks
// Initiate makes.
func ExampleBundle_Verify() {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		log.Fatal(err)
	}
	spk, err := keys.GenerateSignedPreKey(ik, 1)
	if err != nil {
		log.Fatal(err)
	}
	b := &x3dh.Bundle{
		IdentityKey:           ik.PublicKey(),
		SignedPreKeyID:        spk.ID(),
		SignedPreKey:          spk.PublicKey(),
		SignedPreKeySignature: spk.Signature(),
	}
	fmt.Println("genuine:", b.Verify())

	// Someone swaps in their own signed prekey.
	other, err := keys.GeneratePrivateKey()
	if err != nil {
		log.Fatal(err)
	}
	b.SignedPreKey = other.PublicKey()
	fmt.Println("swapped prekey rejected:", errors.Is(b.Verify(), x3dh.ErrInvalidSignature))

	// Output:
	// genuine: <nil>
	// swapped prekey rejected: true
}
