package pqxdh

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/keys"
)

// rootStep is libsignal's root KDF, written out independently of the code
// under test: HKDF-SHA256(salt = root key, ikm = DH, "WhisperRatchet", 64).
func rootStep(t *testing.T, rk []byte, priv *keys.PrivateKey, pub *keys.PublicKey) (root, chain []byte) {
	t.Helper()
	dh, err := priv.ECDH(pub)
	if err != nil {
		t.Fatal(err)
	}
	out, err := hkdf.Key(sha256.New, dh, rk, "WhisperRatchet", 64)
	if err != nil {
		t.Fatal(err)
	}
	return out[:32], out[32:]
}

// TestLibsignalResponder replays the responder of every libsignal session:
// Respond over libsignal's first PreKeySignalMessage must give the chain key
// libsignal's initiator holds for its first receiving chain, and the root
// key from which both of libsignal's next root keys follow (the initiator's
// after its first sending step, the responder's after it answered).
func TestLibsignalResponder(t *testing.T) {
	v := libsignaltest.Load(t)
	for _, s := range v.Sessions {
		t.Run(s.Name, func(t *testing.T) {
			bob := responder(t, &s)
			h := headerOf(t, &s)
			k, err := Respond(bob.ik, bob.spk, bob.opk, bob.kpk, h)
			if err != nil {
				t.Fatal(err)
			}
			alice := s.AliceAfterBundle
			if want := libsignaltest.Hex(t, alice.ReceiverChains[0].ChainKey); !bytes.Equal(k.ChainKey[:], want) {
				t.Errorf("chain key %x, libsignal %x", k.ChainKey, want)
			}
			if !bytes.Equal(libsignaltest.Hex(t, alice.ReceiverChains[0].RatchetKey), libsignaltest.Hex(t, s.Bundle.SignedPreKey)) {
				t.Error("the initiator's first receiving chain is not on SPK_B")
			}
			// The initiator's first sending step: RK' = root step over
			// DH(its ratchet key, SPK_B), which the responder computes as
			// DH(SPK_B, its ratchet key).
			aliceRatchet := mustPub(t, libsignaltest.Hex(t, alice.SenderChain.RatchetKey))
			rk, ck := rootStep(t, k.RootKey[:], bob.spk.PrivateKey(), aliceRatchet)
			if want := libsignaltest.Hex(t, alice.RootKey); !bytes.Equal(rk, want) {
				t.Errorf("root key after the first sending step %x, libsignal %x", rk, want)
			}
			if want := libsignaltest.Hex(t, alice.SenderChain.ChainKey); !bytes.Equal(ck, want) {
				t.Errorf("first sending chain key %x, libsignal %x", ck, want)
			}
			// The responder, on decrypting, takes the same step and then its
			// own sending step with a fresh ratchet key.
			var bobAfter *libsignaltest.State
			for _, m := range s.Messages {
				if m.From == "alice" {
					bobAfter = m.ReceiverAfter
					break
				}
			}
			rk2, ck2 := rootStep(t, rk, mustPriv(t, bobAfter.SenderChain.RatchetPrivate), aliceRatchet)
			if want := libsignaltest.Hex(t, bobAfter.RootKey); !bytes.Equal(rk2, want) {
				t.Errorf("responder's root key %x, libsignal %x", rk2, want)
			}
			if want := libsignaltest.Hex(t, bobAfter.SenderChain.ChainKey); !bytes.Equal(ck2, want) {
				t.Errorf("responder's sending chain key %x, libsignal %x", ck2, want)
			}
		})
	}
}

// TestLibsignalInitiator runs Initiate against every bundle libsignal made
// and Respond with the libsignal responder's keys: both must agree, and the
// one-time prekey is used exactly when the bundle has one.
func TestLibsignalInitiator(t *testing.T) {
	v := libsignaltest.Load(t)
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Sessions {
		b := bundleOf(t, &s.Bundle)
		in, err := Initiate(ik, b)
		if err != nil {
			t.Fatalf("%s: Initiate: %v", s.Name, err)
		}
		if in.Header.HasOneTimePreKey != (b.OneTimePreKey != nil) {
			t.Errorf("%s: HasOneTimePreKey = %t", s.Name, in.Header.HasOneTimePreKey)
		}
		bob := responder(t, &s)
		k, err := Respond(bob.ik, bob.spk, bob.opk, bob.kpk, &in.Header)
		if err != nil {
			t.Fatalf("%s: Respond: %v", s.Name, err)
		}
		if k.RootKey != in.RootKey || k.ChainKey != in.ChainKey || k.PQRKey != in.PQRKey {
			t.Errorf("%s: initiator and responder disagree", s.Name)
		}
	}
}

// TestLibsignalBundleNegatives: every bundle libsignal's processPreKeyBundle
// refused is refused by Verify (and so by Initiate), and the valid one passes.
func TestLibsignalBundleNegatives(t *testing.T) {
	v := libsignaltest.Load(t).BundleNegatives
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, c := range v.Cases {
		b := &Bundle{
			IdentityKey:           mustPub(t, libsignaltest.Hex(t, v.IdentityKey)),
			SignedPreKeyID:        v.SignedPreKey.ID,
			SignedPreKey:          mustPub(t, libsignaltest.Hex(t, c.SignedPreKey)),
			SignedPreKeySignature: libsignaltest.Hex(t, c.SignedPreKeySignature),
			KyberPreKeyID:         v.KyberPreKey.ID,
			KyberPreKeySignature:  libsignaltest.Hex(t, c.KyberPreKeySignature),
		}
		kp, perr := kyberParse(libsignaltest.Hex(t, c.KyberPreKey))
		b.KyberPreKey = kp
		var err error
		if perr != nil {
			err = perr
		} else {
			_, err = Initiate(ik, b)
		}
		switch {
		case c.Error == nil && err != nil:
			t.Errorf("%s: libsignal accepted, Initiate: %v", c.Name, err)
		case c.Error != nil && err == nil:
			t.Errorf("%s: libsignal refused (%s), Initiate accepted", c.Name, c.Error.Message)
		case c.Error != nil:
			refused++
			if perr == nil && !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("%s: %v, want ErrInvalidSignature", c.Name, err)
			}
		}
	}
	if refused < 4 {
		t.Fatalf("only %d refused bundles in the vectors", refused)
	}
}
