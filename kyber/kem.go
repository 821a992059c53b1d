package kyber

import (
	"crypto/mlkem"
	"crypto/sha3"
	"errors"
	"fmt"
)

const (
	// KeyType is libsignal's type byte for Kyber1024 keys and ciphertexts.
	KeyType = 0x08
	// PublicKeySize is the length of a raw Kyber1024 public key.
	PublicKeySize = mlkem.EncapsulationKeySize1024
	// EncodedPublicKeySize is the length of KeyType || public key.
	EncodedPublicKeySize = 1 + PublicKeySize
	// CiphertextSize is the length of a raw Kyber1024 ciphertext.
	CiphertextSize = mlkem.CiphertextSize1024
	// EncodedCiphertextSize is the length of KeyType || ciphertext.
	EncodedCiphertextSize = 1 + CiphertextSize
	// SharedSecretSize is the length of the shared secret.
	SharedSecretSize = mlkem.SharedKeySize
	// SeedSize is the length of a private key as this package stores it, the
	// FIPS 203 seed d || z.
	SeedSize = mlkem.SeedSize
	// LibsignalSecretKeySize is the length of libsignal's serialized secret
	// key: KeyType and the 3168-byte expanded FIPS 203 decapsulation key.
	LibsignalSecretKeySize = 1 + 3168
)

var (
	// ErrInvalidPublicKey is returned for a public key that is not
	// KeyType followed by 1568 bytes, or whose coefficients are not all
	// below q.
	ErrInvalidPublicKey = errors.New("kyber: invalid public key")
	// ErrInvalidCiphertext is returned for a ciphertext that is not
	// KeyType followed by 1568 bytes. A ciphertext of the right shape never
	// fails: a forged one decapsulates to a pseudorandom key.
	ErrInvalidCiphertext = errors.New("kyber: invalid ciphertext")
	// ErrInvalidPrivateKey is returned for a seed that is not SeedSize
	// bytes.
	ErrInvalidPrivateKey = errors.New("kyber: invalid private key")
)

// PublicKey is a Kyber1024 public (encapsulation) key.
type PublicKey struct {
	ek  *mlkem.EncapsulationKey1024
	enc [EncodedPublicKeySize]byte
}

// ParsePublicKey decodes KeyType || key, 1569 bytes. It refuses every other
// type byte (libsignal's Kyber768 0x07 and ML-KEM-1024 0x0A among them, which
// libsignal 0.103 refuses too), every other length (libsignal refuses
// those as well), and keys with a coefficient not below q.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != EncodedPublicKeySize || b[0] != KeyType {
		return nil, ErrInvalidPublicKey
	}
	ek, err := mlkem.NewEncapsulationKey1024(b[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
	}
	k := &PublicKey{ek: ek}
	copy(k.enc[:], b)
	return k, nil
}

// Encode returns KeyType || key, the form that travels in bundles and that
// prekey signatures cover.
func (k *PublicKey) Encode() []byte {
	out := k.enc
	return out[:]
}

// Equal reports whether k and x are the same key. Public keys are public, so
// the comparison need not be constant time.
func (k *PublicKey) Equal(x *PublicKey) bool { return k.enc == x.enc }

// Encapsulate returns a fresh shared secret and its ciphertext, encoded as
// KeyType || ciphertext. The randomness comes from crypto/rand.
func (k *PublicKey) Encapsulate() (sharedSecret, ciphertext []byte) {
	ss, ct := k.ek.Encapsulate()
	out := kyberSecret(ss, ct)
	clear(ss)
	return out, append([]byte{KeyType}, ct...)
}

// kyberSecret is round-3 Kyber's output step over an ML-KEM-1024 result:
// SHAKE-256(K || SHA3-256(c), 32), with c the raw ciphertext.
func kyberSecret(mlkemSecret, rawCiphertext []byte) []byte {
	var in [SharedSecretSize + 32]byte
	copy(in[:], mlkemSecret)
	h := sha3.Sum256(rawCiphertext)
	copy(in[SharedSecretSize:], h[:])
	out := sha3.SumSHAKE256(in[:], SharedSecretSize)
	clear(in[:])
	return out
}

// PrivateKey is a Kyber1024 private (decapsulation) key, held as its FIPS 203
// seed. It is secret.
type PrivateKey struct {
	dk *mlkem.DecapsulationKey1024
}

// GeneratePrivateKey makes a fresh key pair from crypto/rand.
func GeneratePrivateKey() (*PrivateKey, error) {
	dk, err := mlkem.GenerateKey1024()
	if err != nil {
		return nil, err
	}
	return &PrivateKey{dk: dk}, nil
}

// NewPrivateKey loads a private key from its 64-byte seed d || z.
func NewPrivateKey(seed []byte) (*PrivateKey, error) {
	if len(seed) != SeedSize {
		return nil, ErrInvalidPrivateKey
	}
	dk, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		return nil, ErrInvalidPrivateKey
	}
	return &PrivateKey{dk: dk}, nil
}

// PublicKeyOfLibsignalSecret returns the public key inside a secret key
// that libsignal serialized (KeyType || dk_PKE || ek || H(ek) || z, 3169
// bytes), after checking that shape and H(ek) = SHA3-256(ek); a malformed b
// is ErrInvalidPrivateKey. The secret key itself cannot be loaded:
// crypto/mlkem decapsulates only with keys made from seeds.
func PublicKeyOfLibsignalSecret(b []byte) (*PublicKey, error) {
	const dkPKESize = 384 * 4
	if len(b) != LibsignalSecretKeySize || b[0] != KeyType {
		return nil, ErrInvalidPrivateKey
	}
	ek := b[1+dkPKESize : 1+dkPKESize+PublicKeySize]
	h := b[1+dkPKESize+PublicKeySize : 1+dkPKESize+PublicKeySize+32]
	if sum := sha3.Sum256(ek); string(sum[:]) != string(h) {
		return nil, ErrInvalidPrivateKey
	}
	pub, err := ParsePublicKey(append([]byte{KeyType}, ek...))
	if err != nil {
		return nil, ErrInvalidPrivateKey
	}
	return pub, nil
}

// Bytes returns a copy of the 64-byte seed. It is secret: wipe it after use.
func (k *PrivateKey) Bytes() []byte { return k.dk.Bytes() }

// PublicKey returns the key's public half.
func (k *PrivateKey) PublicKey() *PublicKey {
	ek := k.dk.EncapsulationKey()
	pk := &PublicKey{ek: ek}
	pk.enc[0] = KeyType
	copy(pk.enc[1:], ek.Bytes())
	return pk
}

// Decapsulate returns the shared secret of ciphertext, which must be
// KeyType || 1568 bytes. A ciphertext of that shape that was not made for
// this key yields a pseudorandom secret, not an error (implicit rejection,
// see the package documentation); only the first message's MAC tells.
func (k *PrivateKey) Decapsulate(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) != EncodedCiphertextSize || ciphertext[0] != KeyType {
		return nil, ErrInvalidCiphertext
	}
	ss, err := k.dk.Decapsulate(ciphertext[1:])
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	out := kyberSecret(ss, ciphertext[1:])
	clear(ss)
	return out, nil
}

// Clear drops the key (best effort: crypto/mlkem keeps its own copy of the
// expanded key, which no caller can wipe). k must not be used afterwards.
func (k *PrivateKey) Clear() { k.dk = nil }

// String, GoString and Format keep the key out of every fmt verb.
func (PrivateKey) String() string { return "kyber.PrivateKey{REDACTED}" }

// GoString is String.
func (k PrivateKey) GoString() string { return k.String() }

// Format prints String whatever the verb.
func (k PrivateKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }
