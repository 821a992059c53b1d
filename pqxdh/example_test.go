package pqxdh_test

import (
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// Bob publishes a bundle with a signed prekey, a one-time prekey and a
// last-resort Kyber prekey; Alice starts a session from it, and Bob answers
// her header. Only public values and the header pass between them.
func Example() {
	// Bob, once: his keys stay with him, the bundle goes to the server.
	bobIK, _ := keys.GenerateIdentityKeyPair()
	spk, _ := keys.GenerateSignedPreKey(bobIK, 1)
	opks, _ := keys.GenerateOneTimePreKeys(100, 1)
	kpk, _ := kyber.GeneratePreKey(bobIK, 7, true)
	bundle := &pqxdh.Bundle{
		IdentityKey:           bobIK.PublicKey(),
		SignedPreKeyID:        spk.ID(),
		SignedPreKey:          spk.PublicKey(),
		SignedPreKeySignature: spk.Signature(),
		OneTimePreKeyID:       opks[0].ID(),
		OneTimePreKey:         opks[0].PublicKey(),
		KyberPreKeyID:         kpk.ID(),
		KyberPreKey:           kpk.PublicKey(),
		KyberPreKeySignature:  kpk.Signature(),
	}

	// Alice: verify the bundle and agree; her first message carries Header.
	aliceIK, _ := keys.GenerateIdentityKeyPair()
	in, err := pqxdh.Initiate(aliceIK, bundle)
	if err != nil {
		fmt.Println("initiate:", err)
		return
	}
	defer in.Clear()
	fmt.Println("Kyber ciphertext bytes:", len(in.Header.KyberCiphertext))

	// Bob: look up the prekeys the header names and agree too.
	k, err := pqxdh.Respond(bobIK, spk, opks[0], kpk, &in.Header)
	if err != nil {
		fmt.Println("respond:", err)
		return
	}
	defer k.Clear()
	fmt.Println("same root key:", k.RootKey == in.RootKey)
	fmt.Println("same chain key:", k.ChainKey == in.ChainKey)
	fmt.Println("same SPQR key:", k.PQRKey == in.PQRKey)
	// Output:
	// Kyber ciphertext bytes: 1569
	// same root key: true
	// same chain key: true
	// same SPQR key: true
}
