// Package mlkem768 is ML-KEM-768 (FIPS 203) with the incremental
// encapsulation that SPQR, Signal's Sparse Post-Quantum Ratchet, builds its
// braid on. crypto/mlkem computes the same keys, ciphertexts and shared
// secrets (the tests check it on every operation), but only whole: SPQR
// sends an encapsulation key and a ciphertext in two pieces each, one
// erasure-coded chunk per message, and starts encapsulating before the
// second piece of the key has arrived.
//
// The split is the one libsignal's SPQR (v1.5.3, through libcrux-ml-kem's
// incremental API) puts on the wire:
//
//	encapsulation key ek = ByteEncode_12(t̂) ‖ ρ        (1184 bytes)
//	header                = ρ ‖ H(ek)                  (64 bytes)
//	vector                = ByteEncode_12(t̂)           (1152 bytes)
//	ciphertext c          = ct1 ‖ ct2                  (1088 bytes)
//	ct1                   = ByteEncode_10(Compress_10(u))   (960 bytes)
//	ct2                   = ByteEncode_4(Compress_4(v))     (128 bytes)
//
// ct1 needs only the header: the shared secret and the encryption
// randomness come from G(m ‖ H(ek)) and u from the matrix Â, which ρ
// determines. ct2 needs t̂, the vector. Decapsulation is plain ML-KEM on
// ct1 ‖ ct2, implicit rejection included.
//
// # Constant time
//
// Arithmetic on secret values (key generation, encryption randomness,
// decryption, the re-encryption check) has no branches and no table
// lookups that depend on them: reductions are multiply-shift-mask
// (field.go), the message bit becomes a mask, the ciphertext comparison is
// subtle.ConstantTimeCompare and the rejection key is chosen with
// subtle.ConstantTimeCopy. The only data-dependent branches are the
// rejection sampling of Â from the public seed ρ and the length and
// modulus checks on public inputs.
package mlkem768

import (
	"crypto/sha3"
	"crypto/subtle"
	"errors"
	"fmt"
)

const (
	k = 3 // the module rank of ML-KEM-768

	// SeedSize is the length of the key-generation seed d ‖ z.
	SeedSize = 64
	// HeaderSize is the length of the header ρ ‖ H(ek).
	HeaderSize = 64
	// VectorSize is the length of the encoded vector t̂.
	VectorSize = k * 384
	// EncapsulationKeySize is the length of a full encapsulation key.
	EncapsulationKeySize = VectorSize + 32
	// Ciphertext1Size is the length of ct1, the encoding of u.
	Ciphertext1Size = k * 320
	// Ciphertext2Size is the length of ct2, the encoding of v.
	Ciphertext2Size = 128
	// CiphertextSize is the length of a full ciphertext ct1 ‖ ct2.
	CiphertextSize = Ciphertext1Size + Ciphertext2Size
	// SharedKeySize is the length of a shared secret.
	SharedKeySize = 32
	// ExpandedDecapsulationKeySize is the length of FIPS 203's decapsulation
	// key dk_PKE ‖ ek ‖ H(ek) ‖ z.
	ExpandedDecapsulationKeySize = VectorSize + EncapsulationKeySize + 64
)

var (
	errLength = errors.New("mlkem768: wrong input length")
	// ErrVectorMismatch is returned by Encapsulate2 for a vector whose hash,
	// with the header's ρ, is not the header's H(ek).
	ErrVectorMismatch = errors.New("mlkem768: vector does not match the header")
	errExpanded       = errors.New("mlkem768: invalid expanded decapsulation key")
)

// publicKey is ek in the forms the operations use.
type publicKey struct {
	rho [32]byte
	h   [32]byte // H(ek)
	t   [k]nttElement
	a   [k * k]nttElement // Â, row-major: a[i*k+j] = Â[i, j]
}

// DecapsulationKey is an ML-KEM-768 key pair. It is secret.
type DecapsulationKey struct {
	seed    [SeedSize]byte // d ‖ z
	hasSeed bool           // false for a key loaded in expanded form
	z       [32]byte
	s       [k]nttElement
	publicKey
}

// NewDecapsulationKey derives a key pair from a 64-byte seed d ‖ z
// (ML-KEM.KeyGen_internal, FIPS 203 Algorithm 16), as
// crypto/mlkem.NewDecapsulationKey768 does.
func NewDecapsulationKey(seed []byte) (*DecapsulationKey, error) {
	if len(seed) != SeedSize {
		return nil, errLength
	}
	dk := new(DecapsulationKey)
	copy(dk.seed[:], seed)
	dk.hasSeed = true
	copy(dk.z[:], seed[32:])
	// K-PKE.KeyGen (Algorithm 13): (ρ, σ) = G(d ‖ k).
	g := sha3.New512()
	g.Write(seed[:32])
	g.Write([]byte{k})
	var rs [64]byte
	g.Sum(rs[:0])
	copy(dk.rho[:], rs[:32])
	sigma := rs[32:]
	dk.expandA()
	var e [k]nttElement
	for i := range k {
		dk.s[i] = ntt(sampleCBD2(sigma, byte(i)))
		e[i] = ntt(sampleCBD2(sigma, byte(k+i)))
	}
	for i := range k {
		t := e[i]
		for j := range k {
			nttMulAdd(&t, &dk.a[i*k+j], &dk.s[j])
		}
		dk.t[i] = t
	}
	clear(rs[:])
	clear(e[:])
	dk.h = sha3.Sum256(dk.EncapsulationKey())
	return dk, nil
}

// NewDecapsulationKeyFromExpanded loads FIPS 203's 2400-byte decapsulation
// key, with the checks of FIPS 203 §7.3: the lengths, the modulus check on
// ek, and H(ek) against the stored hash. The secret vector's coefficients
// must also be below q (checked in constant time). Such a key has no seed:
// Bytes returns nil.
func NewDecapsulationKeyFromExpanded(b []byte) (*DecapsulationKey, error) {
	if len(b) != ExpandedDecapsulationKeySize {
		return nil, errLength
	}
	dk := new(DecapsulationKey)
	ok := true
	for i := range k {
		var good bool
		dk.s[i], good = decode12(b[384*i : 384*(i+1)])
		ok = ok && good
	}
	ek := b[VectorSize : VectorSize+EncapsulationKeySize]
	if err := dk.publicKey.set(ek); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(dk.h[:], b[VectorSize+EncapsulationKeySize:][:32]) != 1 || !ok {
		return nil, errExpanded
	}
	copy(dk.z[:], b[len(b)-32:])
	return dk, nil
}

// set parses a full encapsulation key into pk, with the modulus check.
func (pk *publicKey) set(ek []byte) error {
	if len(ek) != EncapsulationKeySize {
		return errLength
	}
	if err := pk.setVector(ek[:VectorSize]); err != nil {
		return err
	}
	copy(pk.rho[:], ek[VectorSize:])
	pk.h = sha3.Sum256(ek)
	pk.expandA()
	return nil
}

func (pk *publicKey) setVector(v []byte) error {
	for i := range k {
		var ok bool
		if pk.t[i], ok = decode12(v[384*i : 384*(i+1)]); !ok {
			return errModulus
		}
	}
	return nil
}

func (pk *publicKey) expandA() {
	for i := range k {
		for j := range k {
			pk.a[i*k+j] = sampleNTT(pk.rho[:], byte(j), byte(i))
		}
	}
}

// Bytes returns the 64-byte seed, the key's compact form. It is secret.
// It is nil for a key loaded with NewDecapsulationKeyFromExpanded.
func (dk *DecapsulationKey) Bytes() []byte {
	if !dk.hasSeed {
		return nil
	}
	return append([]byte(nil), dk.seed[:]...)
}

// ExpandedBytes returns FIPS 203's 2400-byte decapsulation key. It is
// secret.
func (dk *DecapsulationKey) ExpandedBytes() []byte {
	b := make([]byte, 0, ExpandedDecapsulationKeySize)
	for i := range dk.s {
		b = encode12(b, &dk.s[i])
	}
	b = dk.appendEncapsulationKey(b)
	b = append(b, dk.h[:]...)
	return append(b, dk.z[:]...)
}

// EncapsulationKey returns the full encapsulation key ek = vector ‖ ρ.
func (dk *DecapsulationKey) EncapsulationKey() []byte {
	return dk.appendEncapsulationKey(make([]byte, 0, EncapsulationKeySize))
}

func (pk *publicKey) appendEncapsulationKey(b []byte) []byte {
	b = pk.appendVector(b)
	return append(b, pk.rho[:]...)
}

func (pk *publicKey) appendVector(b []byte) []byte {
	for i := range pk.t {
		b = encode12(b, &pk.t[i])
	}
	return b
}

// Header returns ρ ‖ H(ek), the part of the encapsulation key that
// Encapsulate1 needs.
func (dk *DecapsulationKey) Header() []byte {
	return append(append(make([]byte, 0, HeaderSize), dk.rho[:]...), dk.h[:]...)
}

// Vector returns ByteEncode_12(t̂), the part of the encapsulation key that
// Encapsulate2 needs.
func (dk *DecapsulationKey) Vector() []byte {
	return dk.appendVector(make([]byte, 0, VectorSize))
}

// Clear wipes the secret parts of dk (best effort: copies the runtime made
// are out of reach).
func (dk *DecapsulationKey) Clear() {
	clear(dk.seed[:])
	clear(dk.z[:])
	clear(dk.s[:])
}

// SplitEncapsulationKey returns the header and vector of a full
// encapsulation key, after FIPS 203's modulus check.
func SplitEncapsulationKey(ek []byte) (header, vector []byte, err error) {
	var pk publicKey
	if len(ek) != EncapsulationKeySize {
		return nil, nil, errLength
	}
	if err := pk.setVector(ek[:VectorSize]); err != nil {
		return nil, nil, err
	}
	h := sha3.Sum256(ek)
	header = append(append(make([]byte, 0, HeaderSize), ek[VectorSize:]...), h[:]...)
	return header, append([]byte(nil), ek[:VectorSize]...), nil
}

// VectorMatchesHeader reports whether vector passes the modulus check and,
// with the header's ρ, hashes to the header's H(ek): whether the two are
// pieces of one encapsulation key.
func VectorMatchesHeader(header, vector []byte) bool {
	if len(header) != HeaderSize || len(vector) != VectorSize {
		return false
	}
	var pk publicKey
	if pk.setVector(vector) != nil {
		return false
	}
	h := sha3.New256()
	h.Write(vector)
	h.Write(header[:32])
	var sum [32]byte
	return subtle.ConstantTimeCompare(h.Sum(sum[:0]), header[32:]) == 1
}

// EncapsState is what an encapsulation keeps between ct1 and ct2: the
// encryption randomness r̂, the noise e2 and the message m, all secret.
type EncapsState struct {
	header [HeaderSize]byte
	m      [32]byte
	r      [k]nttElement
	e2     ringElement
}

// Encapsulate1 starts an encapsulation to the key whose header is given,
// with the 32-byte randomness m (FIPS 203's ML-KEM.Encaps_internal,
// Algorithm 17, up to u). It returns ct1, the state Encapsulate2 finishes,
// and the shared secret, which is final already. Pass fresh randomness
// from crypto/rand as m; a fixed m is for known-answer tests only.
func Encapsulate1(header, m []byte) (ct1 []byte, st *EncapsState, sharedKey []byte, err error) {
	if len(header) != HeaderSize || len(m) != 32 {
		return nil, nil, nil, errLength
	}
	var pk publicKey
	copy(pk.rho[:], header[:32])
	copy(pk.h[:], header[32:])
	pk.expandA()
	st = new(EncapsState)
	copy(st.header[:], header)
	copy(st.m[:], m)
	sharedKey, ct1 = st.encrypt1(&pk, make([]byte, 0, Ciphertext1Size))
	return ct1, st, sharedKey, nil
}

// encrypt1 derives (K, r) = G(m ‖ H(ek)) and the noise, fills st.r and
// st.e2 and appends ct1 (K-PKE.Encrypt, Algorithm 14, lines 9–19 and 21).
func (st *EncapsState) encrypt1(pk *publicKey, ct1 []byte) (sharedKey, out []byte) {
	g := sha3.New512()
	g.Write(st.m[:])
	g.Write(pk.h[:])
	var kr [64]byte
	g.Sum(kr[:0])
	r := kr[32:]
	for i := range k {
		st.r[i] = ntt(sampleCBD2(r, byte(i)))
	}
	for i := range k {
		e1 := sampleCBD2(r, byte(k+i))
		var acc nttElement
		for j := range k {
			nttMulAdd(&acc, &pk.a[j*k+i], &st.r[j]) // (Âᵀ ∘ r̂)_i
		}
		u := polyAdd(inverseNTT(acc), e1)
		ct1 = encodeCompressed10(ct1, &u)
	}
	st.e2 = sampleCBD2(r, 2*k)
	sharedKey = append([]byte(nil), kr[:32]...)
	clear(kr[:])
	return sharedKey, ct1
}

// Encapsulate2 finishes the encapsulation with the key's vector and returns
// ct2. The vector must belong to the header Encapsulate1 was given
// (ErrVectorMismatch otherwise); st is left as it was and can finish again.
func (st *EncapsState) Encapsulate2(vector []byte) ([]byte, error) {
	if len(vector) != VectorSize {
		return nil, errLength
	}
	if !VectorMatchesHeader(st.header[:], vector) {
		return nil, ErrVectorMismatch
	}
	var pk publicKey
	if err := pk.setVector(vector); err != nil {
		return nil, err
	}
	return st.encrypt2(&pk, make([]byte, 0, Ciphertext2Size)), nil
}

// encrypt2 appends ct2 = Compress_4(NTT⁻¹(t̂ᵀ ∘ r̂) + e2 + μ)
// (Algorithm 14, lines 20–23).
func (st *EncapsState) encrypt2(pk *publicKey, ct2 []byte) []byte {
	var acc nttElement
	for i := range k {
		nttMulAdd(&acc, &pk.t[i], &st.r[i])
	}
	mu := decodeDecompressed1(st.m[:])
	v := polyAdd(polyAdd(inverseNTT(acc), st.e2), mu)
	return encodeCompressed4(ct2, &v)
}

// Randomness returns the m Encapsulate1 was given: with the header it
// determines the whole state, so it is the state's compact form. It is
// secret.
func (st *EncapsState) Randomness() []byte { return append([]byte(nil), st.m[:]...) }

// Clear wipes the state.
func (st *EncapsState) Clear() {
	clear(st.m[:])
	clear(st.r[:])
	clear(st.e2[:])
}

// Encapsulate is the whole encapsulation to a full encapsulation key with
// the randomness m: Encapsulate1 and Encapsulate2 in one.
func Encapsulate(ek, m []byte) (ciphertext, sharedKey []byte, err error) {
	if len(m) != 32 {
		return nil, nil, errLength
	}
	var pk publicKey
	if err := pk.set(ek); err != nil {
		return nil, nil, err
	}
	st := new(EncapsState)
	copy(st.m[:], m)
	sharedKey, ciphertext = st.encrypt1(&pk, make([]byte, 0, CiphertextSize))
	ciphertext = st.encrypt2(&pk, ciphertext)
	st.Clear()
	return ciphertext, sharedKey, nil
}

// Decapsulate returns the shared secret of ct1 ‖ ct2 (ML-KEM.Decaps,
// FIPS 203 Algorithm 18). A ciphertext that was not made for dk gives the
// implicit-rejection key J(z ‖ c), not an error; only wrong lengths are
// errors.
func (dk *DecapsulationKey) Decapsulate(ct1, ct2 []byte) ([]byte, error) {
	if len(ct1) != Ciphertext1Size || len(ct2) != Ciphertext2Size {
		return nil, errLength
	}
	// K-PKE.Decrypt (Algorithm 15).
	var acc nttElement
	for i := range k {
		u := ntt(decodeDecompressed10(ct1[320*i : 320*(i+1)]))
		nttMulAdd(&acc, &dk.s[i], &u)
	}
	w := polySub(decodeDecompressed4(ct2), inverseNTT(acc))
	st := new(EncapsState)
	encodeCompressed1(st.m[:0], &w)
	// Re-encrypt and compare in constant time.
	sharedKey, c := st.encrypt1(&dk.publicKey, make([]byte, 0, CiphertextSize))
	c = st.encrypt2(&dk.publicKey, c)
	st.Clear()
	equal := subtle.ConstantTimeCompare(c[:Ciphertext1Size], ct1) &
		subtle.ConstantTimeCompare(c[Ciphertext1Size:], ct2)
	j := sha3.NewSHAKE256()
	j.Write(dk.z[:])
	j.Write(ct1)
	j.Write(ct2)
	var reject [SharedKeySize]byte
	j.Read(reject[:])
	subtle.ConstantTimeCopy(1-equal, sharedKey, reject[:])
	return sharedKey, nil
}

// DecapsulateFull is Decapsulate on a whole ciphertext ct1 ‖ ct2.
func (dk *DecapsulationKey) DecapsulateFull(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) != CiphertextSize {
		return nil, errLength
	}
	return dk.Decapsulate(ciphertext[:Ciphertext1Size], ciphertext[Ciphertext1Size:])
}

// String keeps the key out of every fmt verb.
func (*DecapsulationKey) String() string { return "mlkem768.DecapsulationKey{REDACTED}" }

// Format prints String whatever the verb.
func (dk *DecapsulationKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, dk.String()) }

// String keeps the state out of every fmt verb.
func (*EncapsState) String() string { return "mlkem768.EncapsState{REDACTED}" }

// Format prints String whatever the verb.
func (st *EncapsState) Format(f fmt.State, _ rune) { fmt.Fprint(f, st.String()) }
