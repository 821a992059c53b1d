package keys

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/ratchetkit/ratchetkit/internal/xeddsa"
)

// IdentityKeyPair is a long-term identity: an X25519 key pair that also signs
// with XEdDSA. The XEdDSA signing key (the Edwards scalar and public key) is
// derived once when the pair is made, so each signature costs one fixed-base
// multiplication, like Ed25519.
type IdentityKeyPair struct {
	// Two pointers from the value to any secret, as in PrivateKey.
	st *identityState
}

type identityState struct {
	priv   *PrivateKey
	signer *xeddsa.PrivateKey
}

// GenerateIdentityKeyPair returns a fresh identity key pair.
func GenerateIdentityKeyPair() (*IdentityKeyPair, error) {
	p, err := GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	return newIdentityKeyPair(p), nil
}

// NewIdentityKeyPair returns the identity key pair whose X25519 private key
// is the 32 raw bytes b.
func NewIdentityKeyPair(b []byte) (*IdentityKeyPair, error) {
	p, err := NewPrivateKey(b)
	if err != nil {
		return nil, err
	}
	return newIdentityKeyPair(p), nil
}

func newIdentityKeyPair(p *PrivateKey) *IdentityKeyPair {
	return &IdentityKeyPair{st: &identityState{priv: p, signer: xeddsa.NewPrivateKey(p.st.k)}}
}

// PublicKey returns the public identity key.
func (k *IdentityKeyPair) PublicKey() *PublicKey { return k.st.priv.PublicKey() }

// PrivateKey returns the X25519 private key, for key agreement.
func (k *IdentityKeyPair) PrivateKey() *PrivateKey { return k.st.priv }

// Sign returns an XEdDSA signature of msg made with 64 fresh random bytes, as
// the XEdDSA specification's xeddsa_sign. Signing the same message twice
// gives different signatures; both verify.
func (k *IdentityKeyPair) Sign(msg []byte) []byte {
	var z [xeddsa.RandomSize]byte
	// crypto/rand.Read never fails; it crashes the program if the system
	// randomness source is broken, so that no signature leaks a weak nonce.
	rand.Read(z[:])
	sig := k.st.signer.Sign(msg, &z)
	clear(z[:])
	return sig[:]
}

// Clear wipes the private key and the signing key (best effort).
func (k *IdentityKeyPair) Clear() {
	k.st.priv.Clear()
	k.st.signer.Clear()
}

// String, GoString and Format print the public key and "private REDACTED"
// for every verb, for the value and the pointer alike.
func (k IdentityKeyPair) String() string {
	return fmt.Sprintf("keys.IdentityKeyPair(public %x, private REDACTED)", k.PublicKey())
}
func (k IdentityKeyPair) GoString() string           { return k.String() }
func (k IdentityKeyPair) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }
