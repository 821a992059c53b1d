package signalfloor_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/testutil/signalfloor"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
)

// The floor must do the protocol's work, not only look like it: these
// tests hold sessions between the floor and ratchetkit's pqxdh and ratchet
// packages, started from either side, with steady messages and replies.

type bobKeys struct {
	ik  *keys.IdentityKeyPair
	spk *keys.SignedPreKey
	opk *keys.OneTimePreKey
	kpk *kyber.PreKey
}

func newBob(t *testing.T) *bobKeys {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	spk, err := keys.GenerateSignedPreKey(ik, 1)
	if err != nil {
		t.Fatal(err)
	}
	opks, err := keys.GenerateOneTimePreKeys(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	kpk, err := kyber.GeneratePreKey(ik, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	return &bobKeys{ik, spk, opks[0], kpk}
}

// converse sends 3 steady messages each way per round, so that every
// round's first message is a DH step on both sides, and then a tampered
// one to the floor.
func converse(t *testing.T, lib *ratchet.Session, floor *signalfloor.Party) {
	t.Helper()
	for round := range 4 {
		for i := range 3 {
			pt := fmt.Appendf(nil, "lib %d.%d", round, i)
			m, err := lib.Encrypt(pt)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := floor.Decrypt(m); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("floor decrypts %q: %q, %v", pt, got, err)
			}
		}
		for i := range 3 {
			pt := fmt.Appendf(nil, "floor %d.%d", round, i)
			m := floor.Encrypt(pt)
			if got, err := lib.Decrypt(m); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("ratchet decrypts %q: %q, %v", pt, got, err)
			}
		}
	}
	// Last, as the floor changes its state before it checks the tag.
	m, err := lib.Encrypt([]byte("tampered"))
	if err != nil {
		t.Fatal(err)
	}
	m[len(m)-1] ^= 1
	if _, err := floor.Decrypt(m); err == nil {
		t.Fatal("the floor took a message with a bad tag")
	}
}

func TestFloorInitiates(t *testing.T) {
	for _, withOPK := range []bool{true, false} {
		t.Run(fmt.Sprint("opk=", withOPK), func(t *testing.T) {
			bob := newBob(t)
			_, signer, _ := ed25519.GenerateKey(rand.Reader)
			b := &signalfloor.Bundle{Identity: bob.ik.PublicKey().Encode(), SignedPreKey: bob.spk.PublicKey().Encode(),
				KyberPreKey: bob.kpk.PublicKey().Encode(), SignedPreKeyID: 1, OneTimePreKeyID: 2, KyberPreKeyID: 3,
				Signer: signer.Public().(ed25519.PublicKey)}
			if withOPK {
				b.OneTimePreKey = bob.opk.PublicKey().Encode()
			}
			b.SignedPreKeySignature, b.KyberPreKeySignature = ed25519.Sign(signer, b.SignedPreKey), ed25519.Sign(signer, b.KyberPreKey)
			aik, _ := ecdh.X25519().GenerateKey(rand.Reader)
			alice, msg, err := signalfloor.Initiate(aik, 7, b, []byte("hello"))
			if err != nil {
				t.Fatal(err)
			}
			pk, _, err := signalwire.ParsePreKeySignalMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			if pk.HasPreKeyID != withOPK || pk.RegistrationID != 7 || pk.SignedPreKeyID != 1 || pk.KyberPreKeyID != 3 {
				t.Fatalf("outer fields: %+v", pk)
			}
			var opk *keys.OneTimePreKey
			if withOPK {
				opk = bob.opk
			}
			k, err := pqxdh.Respond(bob.ik, bob.spk, opk, bob.kpk, &pqxdh.Header{IdentityKey: pk.IdentityKey, BaseKey: pk.BaseKey,
				SignedPreKeyID: 1, HasOneTimePreKey: withOPK, OneTimePreKeyID: 2, KyberPreKeyID: 3, KyberCiphertext: pk.KyberCiphertext})
			if err != nil {
				t.Fatal(err)
			}
			lib, err := ratchet.NewSignalResponder(k, bob.ik.PublicKey(), pk.IdentityKey, bob.spk.PrivateKey(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := lib.Decrypt(pk.Message); err != nil || string(got) != "hello" {
				t.Fatalf("first message: %q, %v", got, err)
			}
			converse(t, lib, alice)
		})
	}
}

func TestFloorResponds(t *testing.T) {
	bob := newBob(t)
	pre := &signalfloor.PreKeys{Identity: bob.ik.PrivateKey().Bytes(), SignedPreKey: bob.spk.PrivateKey().Bytes(),
		OneTimePreKey: bob.opk.PrivateKey().Bytes(), KyberSeed: bob.kpk.PrivateKey().Bytes()}
	aik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	in, err := pqxdh.Initiate(aik, &pqxdh.Bundle{IdentityKey: bob.ik.PublicKey(), SignedPreKeyID: 1, SignedPreKey: bob.spk.PublicKey(),
		SignedPreKeySignature: bob.spk.Signature(), OneTimePreKeyID: 2, OneTimePreKey: bob.opk.PublicKey(),
		KyberPreKeyID: 3, KyberPreKey: bob.kpk.PublicKey(), KyberPreKeySignature: bob.kpk.Signature()})
	if err != nil {
		t.Fatal(err)
	}
	lib, err := ratchet.NewSignalInitiator(&in.Keys, aik.PublicKey(), bob.ik.PublicKey(), bob.spk.PublicKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := lib.Encrypt([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := (&signalwire.PreKeySignalMessage{HasPreKeyID: true, PreKeyID: 2, BaseKey: in.Header.BaseKey, IdentityKey: aik.PublicKey(),
		Message: inner, RegistrationID: 7, SignedPreKeyID: 1, KyberPreKeyID: 3, KyberCiphertext: in.Header.KyberCiphertext}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(msg)
	tampered[len(tampered)-1] ^= 1 // the Kyber ciphertext's last byte
	if _, _, err := pre.Respond(tampered); err == nil {
		t.Fatal("the floor took a PreKeySignalMessage with another Kyber ciphertext")
	}
	floor, got, err := pre.Respond(msg)
	if err != nil || string(got) != "hello" {
		t.Fatalf("first message: %q, %v", got, err)
	}
	// Bob answers first in the conversation: swap the order by letting
	// the floor send one reply before converse.
	reply := floor.Encrypt([]byte("ok"))
	if got, err := lib.Decrypt(reply); err != nil || string(got) != "ok" {
		t.Fatalf("reply: %q, %v", got, err)
	}
	converse(t, lib, floor)
}
