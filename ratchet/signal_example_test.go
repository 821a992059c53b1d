package ratchet_test

import (
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
)

// Two Signal sessions from PQXDH: Alice starts from Bob's bundle, Bob from
// the header of her first message. (A messenger sends that header in a
// PreKeySignalMessage around the ratchet's message until Alice has
// received a reply; the session layer does this.)
func ExampleNewSignalInitiator() {
	bobIK, _ := keys.GenerateIdentityKeyPair()
	spk, _ := keys.GenerateSignedPreKey(bobIK, 1)
	kpk, _ := kyber.GeneratePreKey(bobIK, 7, true)
	bundle := &pqxdh.Bundle{
		IdentityKey: bobIK.PublicKey(), SignedPreKeyID: spk.ID(),
		SignedPreKey: spk.PublicKey(), SignedPreKeySignature: spk.Signature(),
		KyberPreKeyID: kpk.ID(), KyberPreKey: kpk.PublicKey(), KyberPreKeySignature: kpk.Signature(),
	}

	aliceIK, _ := keys.GenerateIdentityKeyPair()
	in, err := pqxdh.Initiate(aliceIK, bundle)
	if err != nil {
		fmt.Println(err)
		return
	}
	alice, err := ratchet.NewSignalInitiator(&in.Keys, aliceIK.PublicKey(), bundle.IdentityKey, bundle.SignedPreKey, nil)
	in.Clear()
	if err != nil {
		fmt.Println(err)
		return
	}
	first, _ := alice.Encrypt([]byte("hello, Bob"))

	k, err := pqxdh.Respond(bobIK, spk, nil, kpk, &in.Header)
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err := ratchet.NewSignalResponder(k, bobIK.PublicKey(), aliceIK.PublicKey(), spk.PrivateKey(), nil)
	k.Clear()
	if err != nil {
		fmt.Println(err)
		return
	}
	pt, err := bob.Decrypt(first)
	fmt.Printf("%s %v\n", pt, err)
	reply, _ := bob.Encrypt([]byte("hello, Alice"))
	pt, err = alice.Decrypt(reply)
	fmt.Printf("%s %v\n", pt, err)
	fmt.Println("version byte:", fmt.Sprintf("%#x", reply[0]), "protocol is Signal:", alice.Protocol() == ratchet.Signal)
	// Output:
	// hello, Bob <nil>
	// hello, Alice <nil>
	// version byte: 0x44 protocol is Signal: true
}
