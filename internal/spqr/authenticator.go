package spqr

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/internal/kdf"
)

// SPQR's authenticator: the MACs that bind an epoch's encapsulation key
// header and ciphertext to the session, and the KDF that turns an ML-KEM
// shared secret into the epoch secret.
//
//	update(ep, k): root ‖ mac = HKDF-SHA256(salt = 0*32, ikm = root ‖ k,
//	                   "Signal_PQCKA_V1_MLKEM768:Authenticator Update" ‖ be64(ep), 64)
//	header MAC:    HMAC-SHA256(mac, "Signal_PQCKA_V1_MLKEM768:ekheader" ‖ be64(ep) ‖ header)
//	ciphertext MAC: HMAC-SHA256(mac, "Signal_PQCKA_V1_MLKEM768:ciphertext" ‖ be64(ep) ‖ ct1 ‖ ct2)
//	epoch secret:  HKDF-SHA256(salt = 0*32, ikm = ML-KEM secret,
//	                   "Signal_PQCKA_V1_MLKEM768:SCKA Key" ‖ be64(ep), 32)
//
// Both parties start from a zero root updated once with the PQR key at
// epoch 1, and update again with each epoch's secret: the encapsulating
// side when it makes ct1, the decapsulating side when it has ct2. The
// header MAC is under the key of the epoch before.

// MACSize is the length of the authenticator's MACs.
const MACSize = 32

var (
	authUpdateLabel = []byte("Signal_PQCKA_V1_MLKEM768:Authenticator Update")
	headerMACLabel  = []byte("Signal_PQCKA_V1_MLKEM768:ekheader")
	ctMACLabel      = []byte("Signal_PQCKA_V1_MLKEM768:ciphertext")
	sckaKeyLabel    = []byte("Signal_PQCKA_V1_MLKEM768:SCKA Key")
)

// ErrBadMAC is returned for a header or ciphertext whose MAC does not
// verify. It does not say which.
var ErrBadMAC = errors.New("spqr: MAC verification failed")

// Authenticator holds the authenticator's root and MAC keys. It is secret.
type Authenticator struct {
	root, mac [KeySize]byte
}

// NewAuthenticator returns the authenticator both parties start from: a
// zero root updated with the PQR key at the given epoch (1 for a new
// session).
func NewAuthenticator(pqrKey []byte, epoch uint64) *Authenticator {
	a := new(Authenticator)
	a.Update(epoch, pqrKey)
	return a
}

func labelled(label []byte, epoch uint64, extra int) []byte {
	b := make([]byte, len(label)+8, len(label)+8+extra)
	copy(b, label)
	binary.BigEndian.PutUint64(b[len(label):], epoch)
	return b
}

// Update mixes k (the PQR key, or an epoch secret) into the keys.
func (a *Authenticator) Update(epoch uint64, k []byte) {
	ikm := append(append(make([]byte, 0, KeySize+len(k)), a.root[:]...), k...)
	var out [2 * KeySize]byte
	h := kdf.Get()
	h.HKDF(out[:], kdf.ZeroSalt(), ikm, labelled(authUpdateLabel, epoch, 0))
	kdf.Put(h)
	copy(a.root[:], out[:KeySize])
	copy(a.mac[:], out[KeySize:])
	clear(out[:])
	clear(ikm)
}

func (a *Authenticator) macOver(label []byte, epoch uint64, parts ...[]byte) [MACSize]byte {
	h := kdf.Get()
	var k kdf.Key
	h.SetKey(&k, a.mac[:])
	var out [MACSize]byte
	var p [2][]byte
	copy(p[:], parts)
	h.MAC(&out, &k, labelled(label, epoch, 0), p[0], p[1])
	k.Clear()
	kdf.Put(h)
	return out
}

// HeaderMAC returns the MAC of an encapsulation key header.
func (a *Authenticator) HeaderMAC(epoch uint64, header []byte) [MACSize]byte {
	return a.macOver(headerMACLabel, epoch, header)
}

// CiphertextMAC returns the MAC of a ciphertext ct1 ‖ ct2.
func (a *Authenticator) CiphertextMAC(epoch uint64, ct1, ct2 []byte) [MACSize]byte {
	return a.macOver(ctMACLabel, epoch, ct1, ct2)
}

// VerifyHeader checks a header's MAC in constant time.
func (a *Authenticator) VerifyHeader(epoch uint64, header, mac []byte) error {
	want := a.HeaderMAC(epoch, header)
	if subtle.ConstantTimeCompare(want[:], mac) != 1 {
		return ErrBadMAC
	}
	return nil
}

// VerifyCiphertext checks a ciphertext's MAC in constant time.
func (a *Authenticator) VerifyCiphertext(epoch uint64, ct1, ct2, mac []byte) error {
	want := a.CiphertextMAC(epoch, ct1, ct2)
	if subtle.ConstantTimeCompare(want[:], mac) != 1 {
		return ErrBadMAC
	}
	return nil
}

// Clear wipes the keys.
func (a *Authenticator) Clear() {
	clear(a.root[:])
	clear(a.mac[:])
}

// String keeps the keys out of every fmt verb.
func (Authenticator) String() string { return "spqr.Authenticator{REDACTED}" }

// EpochSecret derives an epoch's secret from its ML-KEM shared secret.
func EpochSecret(epoch uint64, sharedKey []byte) [KeySize]byte {
	var out [KeySize]byte
	h := kdf.Get()
	h.HKDF(out[:], kdf.ZeroSalt(), sharedKey, labelled(sckaKeyLabel, epoch, 0))
	kdf.Put(h)
	return out
}

// Format prints String whatever the verb.
func (a Authenticator) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }
