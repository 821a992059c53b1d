package keys_test

import (
	"encoding/hex"
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/keys"
)

// An identity key pair agrees like any X25519 key and also signs, with
// XEdDSA. Signatures are randomized, so they differ every time; all verify.
func ExampleGenerateIdentityKeyPair() {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		log.Fatal(err)
	}
	msg := []byte("fingerprint me")
	sig := ik.Sign(msg)

	// The public key travels as 0x05 || u; anyone holding it can verify.
	enc := ik.PublicKey().Encode()
	pub, err := keys.DecodePublicKey(enc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("encoded key:", len(enc), "bytes, type", enc[0])
	fmt.Println("signature:", len(sig), "bytes")
	fmt.Println("valid:", pub.Verify(msg, sig))
	fmt.Println("valid for another message:", pub.Verify([]byte("fingerprint you"), sig))
	// Output:
	// encoded key: 33 bytes, type 5
	// signature: 64 bytes
	// valid: true
	// valid for another message: false
}

// Bob publishes a signed prekey; Alice checks its signature against Bob's
// identity key before she uses it. Only bytes pass between them.
func ExampleGenerateSignedPreKey() {
	var bundle struct {
		identity, prekey, signature []byte
		id                          uint32
	}
	{ // Bob
		ik, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			log.Fatal(err)
		}
		spk, err := keys.GenerateSignedPreKey(ik, 1)
		if err != nil {
			log.Fatal(err)
		}
		bundle.identity = ik.PublicKey().Encode()
		bundle.prekey = spk.PublicKey().Encode()
		bundle.signature = spk.Signature()
		bundle.id = spk.ID()
		// spk.MarshalBinary() is what Bob stores; it holds the private key.
	}
	{ // Alice
		ik, err := keys.DecodePublicKey(bundle.identity)
		if err != nil {
			log.Fatal(err)
		}
		spk, err := keys.DecodePublicKey(bundle.prekey)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("prekey", bundle.id, "verifies:", keys.VerifySignedPreKey(ik, spk, bundle.signature) == nil)

		bundle.signature[10] ^= 1
		fmt.Println("tampered:", keys.VerifySignedPreKey(ik, spk, bundle.signature))
	}
	// Output:
	// prekey 1 verifies: true
	// tampered: keys: invalid signature
}

// Verify accepts libsignal's signatures, which carry the Edwards sign bit in
// their last byte. This is libsignal's own known-answer vector: an identity
// key signing a serialized public key.
func ExamplePublicKey_Verify() {
	identity, _ := hex.DecodeString("ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64")
	msg, _ := hex.DecodeString("05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a")
	sig, _ := hex.DecodeString("5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb" +
		"ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88")

	pub, err := keys.NewPublicKey(identity)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pub.Verify(msg, sig))
	sig[63] ^= 0x80 // the other sign: a different Edwards key
	fmt.Println(pub.Verify(msg, sig))
	// Output:
	// true
	// false
}

// Two parties agree on a shared secret; a small-order public key, which
// would make the secret predictable, is an error instead. The keys are
// those of RFC 7748, section 6.1.
func ExamplePrivateKey_ECDH() {
	alicePriv, _ := hex.DecodeString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	bobPriv, _ := hex.DecodeString("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
	alice, err := keys.NewPrivateKey(alicePriv)
	if err != nil {
		log.Fatal(err)
	}
	bob, err := keys.NewPrivateKey(bobPriv)
	if err != nil {
		log.Fatal(err)
	}

	s1, err := alice.ECDH(bob.PublicKey())
	if err != nil {
		log.Fatal(err)
	}
	s2, err := bob.ECDH(alice.PublicKey())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n%x\n", s1, s2)

	zero, _ := keys.NewPublicKey(make([]byte, 32)) // u = 0 has order 2
	_, err = alice.ECDH(zero)
	fmt.Println(err)
	// Output:
	// 4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742
	// 4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742
	// keys: all-zero shared secret from a small-order public key
}

// Private keys never print; public keys print as their encoding.
func ExamplePrivateKey_String() {
	raw, _ := hex.DecodeString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	priv, err := keys.NewPrivateKey(raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v\n%x\n", priv, priv)
	fmt.Printf("%x\n", priv.PublicKey())
	// Output:
	// keys.PrivateKey(REDACTED)
	// keys.PrivateKey(REDACTED)
	// 058520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a
}

// One-time prekeys come in batches with consecutive ids; a batch never
// wraps around the 32-bit id space.
func ExampleGenerateOneTimePreKeys() {
	opks, err := keys.GenerateOneTimePreKeys(100, 3)
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range opks {
		fmt.Println(k.ID())
	}
	_, err = keys.GenerateOneTimePreKeys(4294967295, 2)
	fmt.Println(err != nil)
	// Output:
	// 100
	// 101
	// 102
	// true
}
