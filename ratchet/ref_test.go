package ratchet

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
)

// refSession is a second, deliberately plain implementation of the
// profile's Double Ratchet, written from the specification's pseudocode
// with the standard library only (crypto/ecdh, crypto/hkdf, crypto/hmac,
// crypto/aes). It shares no code with the package: the vectors are
// generated with it, and the package must reproduce them. It records
// every value it derives so the vectors can spell them out.
//
// Wire constants are declared here again on purpose.
type refSession struct {
	maxSkip, maxKeys int
	ad               []byte

	dhsPriv, dhsPub []byte
	dhr             []byte // nil: none
	rk              []byte
	cks, ckr        []byte // nil: none
	ns, nr, pn      uint32

	// mkSkipped is the specification's MKSKIPPED, in insertion order (the
	// eviction order); a replaced entry moves to the end.
	mkSkipped []refSkipped

	// nextKey returns the next ratchet private key to use.
	nextKey func() []byte
}

type refSkipped struct {
	dh []byte
	n  uint32
	mk []byte
}

const (
	refInfoRK     = "ratchetkit_Ratchet_v1"
	refInfoMK     = "ratchetkit_MessageKeys_AES-256-GCM_v1"
	refHeaderSize = 42
	refMinMessage = 58
)

// refError is an error kind, named as the conformance driver names them.
type refError string

func (e refError) Error() string { return string(e) }

// Trace records of one operation.
type refChainStep struct {
	CK, MK, NextCK []byte
}

type refDHStep struct {
	OldChainSkipped []refSkipped
	DHRecv          []byte // DH(DHs, header key)
	RK1, CKr        []byte // KDF_RK(RK, DHRecv)
	NewPriv         []byte
	NewPub          []byte
	DHSend          []byte // DH(new DHs, header key)
	RK2, CKs        []byte // KDF_RK(RK1, DHSend)
}

type refTrace struct {
	Path       string // "skipped_key", "current_chain", "dh_step"
	DH         *refDHStep
	Skipped    []refSkipped // stored on the current/new chain before the message
	Evicted    []refSkipped
	Step       refChainStep // for skipped_key: only MK
	AESKey     []byte
	Nonce      []byte
	Header     []byte
	Message    []byte
	Plaintext  []byte
	InitDH     []byte // initiator setup only
	InitRK     []byte
	InitCKs    []byte
	UsedNewKey bool
}

func refX25519(priv, pub []byte) ([]byte, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	out, err := k.ECDH(p) // fails on an all-zero output
	if err != nil {
		return nil, refError("bad_key")
	}
	return out, nil
}

func refPublic(priv []byte) []byte {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return k.PublicKey().Bytes()
}

func refKDFRK(rk, dh []byte) ([]byte, []byte) {
	out, err := hkdf.Key(sha256.New, dh, rk, refInfoRK, 64)
	if err != nil {
		panic(err)
	}
	return out[:32], out[32:]
}

func refHMAC(k []byte, b byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte{b})
	return m.Sum(nil)
}

func refKDFCK(ck []byte) refChainStep {
	return refChainStep{CK: ck, MK: refHMAC(ck, 1), NextCK: refHMAC(ck, 2)}
}

func refMessageKeys(mk []byte) (key, nonce []byte) {
	out, err := hkdf.Key(sha256.New, mk, make([]byte, 32), refInfoMK, 44)
	if err != nil {
		panic(err)
	}
	return out[:32], out[32:]
}

func refGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

var refP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// refCanonical reports whether the little-endian u is below p.
func refCanonical(u []byte) bool {
	be := make([]byte, len(u))
	for i := range u {
		be[len(u)-1-i] = u[i]
	}
	return new(big.Int).SetBytes(be).Cmp(refP) < 0
}

func newRefInitiator(sk, ad, peer, priv []byte, maxSkip, maxKeys int) (*refSession, *refTrace, error) {
	s := &refSession{maxSkip: maxSkip, maxKeys: maxKeys, ad: bytes.Clone(ad)}
	s.dhsPriv, s.dhsPub = priv, refPublic(priv)
	s.dhr = peer
	dh, err := refX25519(s.dhsPriv, s.dhr)
	if err != nil {
		return nil, nil, err
	}
	s.rk, s.cks = refKDFRK(sk, dh)
	return s, &refTrace{InitDH: dh, InitRK: s.rk, InitCKs: s.cks}, nil
}

func newRefResponder(sk, ad, priv []byte, maxSkip, maxKeys int) *refSession {
	return &refSession{
		maxSkip: maxSkip, maxKeys: maxKeys, ad: bytes.Clone(ad),
		dhsPriv: priv, dhsPub: refPublic(priv), rk: bytes.Clone(sk),
	}
}

func (s *refSession) header(n uint32) []byte {
	h := []byte{0x01, 0x05}
	h = append(h, s.dhsPub...)
	h = binary.BigEndian.AppendUint32(h, s.pn)
	return binary.BigEndian.AppendUint32(h, n)
}

func (s *refSession) encrypt(pt []byte) (*refTrace, error) {
	if s.cks == nil {
		return nil, refError("no_session")
	}
	if s.ns >= 1<<32-2 {
		return nil, refError("counter_overflow")
	}
	step := refKDFCK(s.cks)
	s.cks = step.NextCK
	hdr := s.header(s.ns)
	s.ns++
	key, nonce := refMessageKeys(step.MK)
	msg := refGCM(key).Seal(bytes.Clone(hdr), nonce, pt, append(bytes.Clone(s.ad), hdr...))
	return &refTrace{Step: step, AESKey: key, Nonce: nonce, Header: hdr, Message: msg, Plaintext: pt}, nil
}

func (s *refSession) clone() *refSession {
	c := *s
	c.mkSkipped = append([]refSkipped(nil), s.mkSkipped...)
	return &c
}

func (s *refSession) findSkipped(dh []byte, n uint32) int {
	for i, e := range s.mkSkipped {
		if e.n == n && bytes.Equal(e.dh, dh) {
			return i
		}
	}
	return -1
}

// storeSkipped is the specification's MKSKIPPED[dh, n] = mk with the
// profile's cap: a replaced entry counts as new, and the oldest entries are
// evicted beyond maxKeys.
func (s *refSession) storeSkipped(tr *refTrace, e refSkipped) {
	if i := s.findSkipped(e.dh, e.n); i >= 0 {
		s.mkSkipped = append(s.mkSkipped[:i], s.mkSkipped[i+1:]...)
	}
	s.mkSkipped = append(s.mkSkipped, e)
	for len(s.mkSkipped) > s.maxKeys {
		tr.Evicted = append(tr.Evicted, s.mkSkipped[0])
		s.mkSkipped = s.mkSkipped[1:]
	}
}

func (s *refSession) skipMessageKeys(tr *refTrace, until uint32, into *[]refSkipped) {
	if s.ckr == nil {
		return
	}
	for s.nr < until {
		step := refKDFCK(s.ckr)
		s.ckr = step.NextCK
		e := refSkipped{dh: s.dhr, n: s.nr, mk: step.MK}
		*into = append(*into, e)
		s.storeSkipped(tr, e)
		s.nr++
	}
}

func (s *refSession) openWith(tr *refTrace, mk, hdr, ct []byte) ([]byte, error) {
	key, nonce := refMessageKeys(mk)
	tr.AESKey, tr.Nonce = key, nonce
	pt, err := refGCM(key).Open(nil, nonce, ct, append(bytes.Clone(s.ad), hdr...))
	if err != nil {
		return nil, refError("auth_failed")
	}
	if pt == nil {
		pt = []byte{}
	}
	tr.Plaintext = pt
	return pt, nil
}

// decrypt is RatchetDecrypt with the profile's checks. It works on a copy
// of the state and keeps it only on success.
func (s *refSession) decrypt(msg []byte) (*refTrace, error) {
	if len(msg) < refMinMessage {
		return nil, refError("malformed")
	}
	if msg[0] != 0x01 {
		return nil, refError("unknown_type")
	}
	if msg[1] != 0x05 || !refCanonical(msg[2:34]) {
		return nil, refError("bad_key")
	}
	hdr, ct := msg[:refHeaderSize], msg[refHeaderSize:]
	dh := bytes.Clone(msg[2:34])
	pn := binary.BigEndian.Uint32(msg[34:38])
	n := binary.BigEndian.Uint32(msg[38:42])
	if pn == 1<<32-1 || n == 1<<32-1 {
		return nil, refError("counter_overflow")
	}
	tr := &refTrace{Header: hdr, Message: msg}

	// TrySkippedMessageKeys
	if i := s.findSkipped(dh, n); i >= 0 {
		tr.Path = "skipped_key"
		tr.Step.MK = s.mkSkipped[i].mk
		if _, err := s.openWith(tr, s.mkSkipped[i].mk, hdr, ct); err != nil {
			return nil, err
		}
		s.mkSkipped = append(s.mkSkipped[:i], s.mkSkipped[i+1:]...)
		return tr, nil
	}

	c := s.clone()
	if c.dhr != nil && bytes.Equal(dh, c.dhr) {
		tr.Path = "current_chain"
		if c.ckr == nil {
			return nil, refError("auth_failed")
		}
		if n < c.nr {
			return nil, refError("duplicate")
		}
	} else {
		tr.Path = "dh_step"
		// Both MaxSkip checks come before any DH computation.
		if uint64(c.nr)+uint64(c.maxSkip) < uint64(pn) || uint64(c.maxSkip) < uint64(n) {
			return nil, refError("too_many_skipped")
		}
		d := &refDHStep{}
		tr.DH = d
		c.skipMessageKeys(tr, pn, &d.OldChainSkipped)
		// DHRatchet
		c.pn, c.ns, c.nr = c.ns, 0, 0
		c.dhr = dh
		var err error
		if d.DHRecv, err = refX25519(c.dhsPriv, c.dhr); err != nil {
			return nil, err
		}
		d.RK1, d.CKr = refKDFRK(c.rk, d.DHRecv)
		c.rk, c.ckr = d.RK1, d.CKr
		// The new key pair is drawn only once the message authenticates
		// (below); the chain it starts does not affect decryption.
	}
	if uint64(c.nr)+uint64(c.maxSkip) < uint64(n) {
		return nil, refError("too_many_skipped")
	}
	c.skipMessageKeys(tr, n, &tr.Skipped)
	tr.Step = refKDFCK(c.ckr)
	c.ckr = tr.Step.NextCK
	c.nr++
	if _, err := c.openWith(tr, tr.Step.MK, hdr, ct); err != nil {
		return nil, err
	}
	if d := tr.DH; d != nil {
		d.NewPriv = c.nextKey()
		d.NewPub = refPublic(d.NewPriv)
		tr.UsedNewKey = true
		c.dhsPriv, c.dhsPub = d.NewPriv, d.NewPub
		var err error
		if d.DHSend, err = refX25519(c.dhsPriv, c.dhr); err != nil {
			return nil, err
		}
		d.RK2, d.CKs = refKDFRK(c.rk, d.DHSend)
		c.rk, c.cks = d.RK2, d.CKs
	}
	*s = *c
	return tr, nil
}

func (e refSkipped) String() string { return fmt.Sprintf("(%x, %d)", e.dh[:4], e.n) }
