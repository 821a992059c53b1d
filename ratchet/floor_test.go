package ratchet

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
)

// floorParty is the benchmarks' floor: the same protocol steps made of
// plain standard-library calls (crypto/hmac, crypto/hkdf, crypto/ecdh,
// crypto/aes, crypto/cipher), written the way a straightforward
// implementation would, with a map for skipped keys. It does no
// error handling beyond what the benchmarks need.
type floorParty struct {
	rk, cks, ckr []byte
	dhsPriv      []byte // stored raw, loaded per DH step
	dhsPub       []byte
	dhr          []byte
	ns, nr, pn   uint32
	ad           []byte
	skipped      map[floorSkipKey][]byte
}

type floorSkipKey struct {
	dh string
	n  uint32
}

// The floor's primitives are the reference implementation's (ref_test.go):
// the same plain crypto/hkdf, crypto/hmac, crypto/ecdh and crypto/cipher
// calls. Its state machine stays its own: the reference keeps the
// specification's ordered skipped-key list, copies its state for every
// decryption and records a trace of every value, all of which a floor
// must not pay for.

func floorKDFCK(ck []byte) (mk, next []byte) {
	st := refKDFCK(ck)
	return st.MK, st.NextCK
}

func floorAEAD(mk []byte) (cipher.AEAD, []byte) {
	key, nonce := refMessageKeys(mk)
	return refGCM(key), nonce
}

func floorDH(priv, pub []byte) []byte {
	out, err := refX25519(priv, pub)
	if err != nil {
		panic(err)
	}
	return out
}

func newFloorPair(sk, ad []byte) (alice, bob *floorParty) {
	bk, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ak, _ := ecdh.X25519().GenerateKey(rand.Reader)
	bob = &floorParty{rk: sk, dhsPriv: bk.Bytes(), dhsPub: bk.PublicKey().Bytes(), ad: ad}
	alice = &floorParty{dhsPriv: ak.Bytes(), dhsPub: ak.PublicKey().Bytes(), dhr: bob.dhsPub, ad: ad}
	alice.rk, alice.cks = refKDFRK(sk, floorDH(alice.dhsPriv, alice.dhr))
	return alice, bob
}

func (p *floorParty) encrypt(pt []byte) []byte {
	mk, next := floorKDFCK(p.cks)
	p.cks = next
	hdr := []byte{1, 5}
	hdr = append(hdr, p.dhsPub...)
	hdr = binary.BigEndian.AppendUint32(hdr, p.pn)
	hdr = binary.BigEndian.AppendUint32(hdr, p.ns)
	p.ns++
	g, nonce := floorAEAD(mk)
	adh := append(append([]byte{}, p.ad...), hdr...)
	return g.Seal(hdr, nonce, pt, adh)
}

func (p *floorParty) decrypt(msg []byte) ([]byte, error) {
	hdr := msg[:42]
	dh := hdr[2:34]
	n := binary.BigEndian.Uint32(hdr[38:])
	adh := append(append([]byte{}, p.ad...), hdr...)
	if mk, ok := p.skipped[floorSkipKey{string(dh), n}]; ok {
		g, nonce := floorAEAD(mk)
		pt, err := g.Open(nil, nonce, msg[42:], adh)
		if err == nil {
			delete(p.skipped, floorSkipKey{string(dh), n})
		}
		return pt, err
	}
	if !bytes.Equal(dh, p.dhr) {
		p.pn, p.ns, p.nr = p.ns, 0, 0
		p.dhr = bytes.Clone(dh)
		p.rk, p.ckr = refKDFRK(p.rk, floorDH(p.dhsPriv, p.dhr))
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		p.dhsPriv, p.dhsPub = k.Bytes(), k.PublicKey().Bytes()
		p.rk, p.cks = refKDFRK(p.rk, floorDH(p.dhsPriv, p.dhr))
	}
	if n < p.nr {
		return nil, errors.New("floor: duplicate")
	}
	for p.nr < n {
		mk, next := floorKDFCK(p.ckr)
		if p.skipped == nil {
			p.skipped = map[floorSkipKey][]byte{}
		}
		p.skipped[floorSkipKey{string(dh), p.nr}] = mk
		p.ckr = next
		p.nr++
	}
	mk, next := floorKDFCK(p.ckr)
	p.ckr = next
	p.nr++
	g, nonce := floorAEAD(mk)
	return g.Open(nil, nonce, msg[42:], adh)
}
