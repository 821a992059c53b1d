package ratchet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
)

// signalFloor is the Signal benchmarks' floor: libsignal's ratchet steps
// (root and chain KDFs, SPQR's first-epoch chains, message keys,
// AES-256-CBC, the truncated HMAC over both identity keys) made of plain
// standard-library calls, written straightforwardly: a map of receiving
// chains, no skipped keys, no copy-and-commit, no bounds. The SignalMessage
// is appended by hand and parsed with internal/signalwire (the standard
// library has no protobuf), as a floor built from existing parts would.
type signalFloor struct {
	rk, cks        []byte
	dhs            *ecdh.PrivateKey
	ns, pn         uint32
	chains         map[string]*signalFloorChain
	pqSend, pqRecv signalFloorPQ
	local, remote  []byte // encoded identity keys
}

type signalFloorChain struct {
	ck   []byte
	next uint32
}

type signalFloorPQ struct {
	key []byte
	idx uint32
}

var errFloor = errors.New("floor: refused")

func floorHKDF(secret, salt []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		panic(err)
	}
	return out
}

func floorHMAC(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func (c *signalFloorPQ) next() []byte {
	c.idx++
	info := binary.BigEndian.AppendUint32(nil, c.idx)
	out := floorHKDF(c.key, make([]byte, 32), string(info)+"Signal PQ Ratchet V1 Chain Next", 64)
	c.key = out[:32]
	return out[32:]
}

// newSignalFloorPair starts both parties from random PQXDH keys, with
// Alice's first sending step taken.
func newSignalFloorPair() (alice, bob *signalFloor) {
	rk, ck, pqr := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	rand.Read(rk)
	rand.Read(ck)
	rand.Read(pqr)
	x := ecdh.X25519()
	spk, _ := x.GenerateKey(rand.Reader)
	aid, _ := x.GenerateKey(rand.Reader)
	bid, _ := x.GenerateKey(rand.Reader)
	enc := func(k *ecdh.PrivateKey) []byte { return append([]byte{5}, k.PublicKey().Bytes()...) }
	start := floorHKDF(pqr, make([]byte, 32), "Signal PQ Ratchet V1 Chain  Start", 96)
	a2b, b2a := start[32:64], start[64:96]
	bob = &signalFloor{rk: rk, dhs: spk, chains: map[string]*signalFloorChain{}, local: enc(bid), remote: enc(aid),
		pqSend: signalFloorPQ{key: b2a}, pqRecv: signalFloorPQ{key: a2b}}
	alice = &signalFloor{rk: rk, chains: map[string]*signalFloorChain{string(spk.PublicKey().Bytes()): {ck: ck}},
		local: enc(aid), remote: enc(bid), pqSend: signalFloorPQ{key: a2b}, pqRecv: signalFloorPQ{key: b2a}}
	alice.dhs, _ = x.GenerateKey(rand.Reader)
	dh, _ := alice.dhs.ECDH(spk.PublicKey())
	out := floorHKDF(dh, alice.rk, "WhisperRatchet", 64)
	alice.rk, alice.cks = out[:32], out[32:]
	return alice, bob
}

func (p *signalFloor) encrypt(pt []byte) []byte {
	seed := floorHMAC(p.cks, []byte{1})
	p.cks = floorHMAC(p.cks, []byte{2})
	salt := p.pqSend.next()
	mk := floorHKDF(seed, salt, "WhisperMessageKeys", 80)
	block, _ := aes.NewCipher(mk[:32])
	pad := aes.BlockSize - len(pt)%aes.BlockSize
	ct := make([]byte, len(pt)+pad)
	copy(ct, pt)
	for i := len(pt); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, mk[64:80]).CryptBlocks(ct, ct)
	pq := spqr.AppendNone(nil, 1, p.pqSend.idx)
	b := []byte{signalwire.VersionByte, 0x0a, 33, 5}
	b = append(b, p.dhs.PublicKey().Bytes()...)
	b = binary.AppendUvarint(append(b, 0x10), uint64(p.ns))
	b = binary.AppendUvarint(append(b, 0x18), uint64(p.pn))
	b = binary.AppendUvarint(append(b, 0x22), uint64(len(ct)))
	b = append(b, ct...)
	b = binary.AppendUvarint(append(b, 0x2a), uint64(len(pq)))
	b = append(b, pq...)
	p.ns++
	return append(b, floorHMAC(mk[32:64], p.local, p.remote, b)[:8]...)
}

func (p *signalFloor) decrypt(wire []byte) ([]byte, error) {
	m, body, mac, err := signalwire.ParseSignalMessage(wire)
	if err != nil {
		return nil, err
	}
	theirs := m.RatchetKey.Bytes()
	c := p.chains[string(theirs)]
	if c == nil {
		pub, err := ecdh.X25519().NewPublicKey(theirs)
		if err != nil {
			return nil, err
		}
		dh, err := p.dhs.ECDH(pub)
		if err != nil {
			return nil, err
		}
		out := floorHKDF(dh, p.rk, "WhisperRatchet", 64)
		c = &signalFloorChain{ck: out[32:]}
		p.chains[string(theirs)] = c
		if p.dhs, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		dh, _ = p.dhs.ECDH(pub)
		out = floorHKDF(dh, out[:32], "WhisperRatchet", 64)
		p.rk, p.cks = out[:32], out[32:]
		p.pn, p.ns = max(p.ns, 1)-1, 0
	}
	for c.next < m.Counter {
		c.ck = floorHMAC(c.ck, []byte{2})
		c.next++
	}
	seed := floorHMAC(c.ck, []byte{1})
	c.ck, c.next = floorHMAC(c.ck, []byte{2}), c.next+1
	pq, err := spqr.Parse(m.PQRatchet)
	if err != nil {
		return nil, err
	}
	var salt []byte
	for p.pqRecv.idx < pq.Index {
		salt = p.pqRecv.next()
	}
	mk := floorHKDF(seed, salt, "WhisperMessageKeys", 80)
	if !hmac.Equal(floorHMAC(mk[32:64], p.remote, p.local, body)[:8], mac) {
		return nil, errFloor
	}
	block, _ := aes.NewCipher(mk[:32])
	out := make([]byte, len(m.Ciphertext))
	cipher.NewCBCDecrypter(block, mk[64:80]).CryptBlocks(out, m.Ciphertext)
	return out[:len(out)-int(out[len(out)-1])], nil
}
