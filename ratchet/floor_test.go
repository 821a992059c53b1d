package ratchet

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

var (
	floorInfoRK = []byte("ratchetkit_Ratchet_v1")
	floorInfoMK = []byte("ratchetkit_MessageKeys_AES-256-GCM_v1")
	floorSalt   = make([]byte, 32)
)

func floorKDFRK(rk, dh []byte) (newRK, ck []byte) {
	out, err := hkdf.Key(sha256.New, dh, rk, string(floorInfoRK), 64)
	if err != nil {
		panic(err)
	}
	return out[:32], out[32:]
}

func floorKDFCK(ck []byte) (mk, next []byte) {
	m := hmac.New(sha256.New, ck)
	m.Write([]byte{1})
	mk = m.Sum(nil)
	m = hmac.New(sha256.New, ck)
	m.Write([]byte{2})
	return mk, m.Sum(nil)
}

func floorAEAD(mk []byte) (cipher.AEAD, []byte) {
	km, err := hkdf.Key(sha256.New, mk, floorSalt, string(floorInfoMK), 44)
	if err != nil {
		panic(err)
	}
	blk, err := aes.NewCipher(km[:32])
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		panic(err)
	}
	return g, km[32:]
}

func floorDH(priv, pub []byte) []byte {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	out, err := k.ECDH(p)
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
	alice.rk, alice.cks = floorKDFRK(sk, floorDH(alice.dhsPriv, alice.dhr))
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
		p.rk, p.ckr = floorKDFRK(p.rk, floorDH(p.dhsPriv, p.dhr))
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		p.dhsPriv, p.dhsPub = k.Bytes(), k.PublicKey().Bytes()
		p.rk, p.cks = floorKDFRK(p.rk, floorDH(p.dhsPriv, p.dhr))
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
