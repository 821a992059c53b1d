// Package signalfloor is the standard-library floor of the Signal-protocol
// benchmarks (package ratchet's and package session's): the same primitive
// work as a libsignal 0.103 session, made of crypto/ecdh, crypto/mlkem,
// crypto/sha3, crypto/hkdf, crypto/hmac, crypto/sha256, crypto/aes and
// crypto/cipher calls and nothing of ratchetkit, written straightforwardly.
// Only tests import it (internal/depcheck refuses it to library code).
//
// What the floor does, per operation:
//
//   - Party.Encrypt: the chain step (two HMAC-SHA256), the SPQR chain step
//     (one HKDF), the message keys (one HKDF of 80 bytes), PKCS#7 and
//     AES-256-CBC, the SignalMessage appended by hand with the SPQR V1 None
//     payload, and the 8-byte HMAC over both identity keys and the message.
//   - Party.Decrypt: the protobuf fields walked by hand, for a new ratchet
//     key the DH step (one X25519 public key decoded, two ECDH, one key
//     generated, two HKDF), then the same chain, SPQR and message-key steps,
//     the HMAC checked with hmac.Equal, and AES-256-CBC with the padding
//     checked.
//   - Initiate (Alice's setup): both prekey signatures verified, the
//     bundle's keys decoded (three X25519 and one ML-KEM-1024 public key),
//     a base key generated, four ECDH (three without a one-time prekey),
//     ML-KEM-1024 encapsulation with the Kyber output step (SHA3-256 and
//     SHAKE256), one HKDF of 96 bytes, the SPQR start (one HKDF), the
//     initiator's first ratchet step (a key generated, one ECDH, one HKDF),
//     then Encrypt and the PreKeySignalMessage appended by hand.
//   - PreKeys.Respond (Bob's setup): the PreKeySignalMessage walked by
//     hand, Bob's prekeys loaded from their stored bytes (two X25519 private
//     keys and the ML-KEM-1024 decapsulation key from its seed), Alice's
//     two keys decoded, four ECDH, decapsulation with the Kyber output step,
//     one HKDF of 96 bytes, the SPQR start, then Decrypt.
//
// SPQR: the floor is a peer with the minimum that libsignal 0.103 (and
// ratchetkit's full SPQR) accepts, the first epoch's chains and V1 None
// messages. ratchetkit's sessions run full SPQR; the floor does none of
// the braid's work (ML-KEM-768 key generation, encapsulation and
// decapsulation once per epoch, the erasure code of every message's
// chunk, the authenticator's MACs, the chains of each new epoch), so the
// ratios charge all of it to ratchetkit. A floor given credit for it
// would need an erasure code, which the standard library lacks.
//
// What it leaves out, so that the benchmarks' ratios include it: the
// standard library has no XEdDSA, so the floor verifies Ed25519 signatures
// over the same messages instead (the same equation on the same curve,
// without the Montgomery-to-Edwards conversion); nor can it express the
// responder's base-key torsion check (one scalar multiplication). It keeps
// no skipped keys, checks no limits, copies nothing for all-or-nothing
// decryption, and has no store, record or identity check.
//
// The floor speaks the real wire format with the real keys: its tests
// hold sessions with package ratchet and pqxdh both ways, so that a floor
// that skipped a step would fail them rather than look fast.
package signalfloor

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"errors"
)

// Keys is the 96 bytes of PQXDH's output: root key, chain key, SPQR key.
type Keys [96]byte

var errRefused = errors.New("signalfloor: refused")

func kdf(secret, salt []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		panic(err)
	}
	return out
}

func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// encode is libsignal's encoding of an X25519 public key.
func encode(k *ecdh.PublicKey) []byte { return append([]byte{5}, k.Bytes()...) }

func decodeEC(b []byte) (*ecdh.PublicKey, error) {
	if len(b) != 33 || b[0] != 5 {
		return nil, errRefused
	}
	return ecdh.X25519().NewPublicKey(b[1:])
}

// Party is one side of a Signal session.
type Party struct {
	rk, cks        []byte
	dhs            *ecdh.PrivateKey
	ns, pn         uint32
	chains         map[string]*chain
	pqSend, pqRecv pqChain
	local, remote  []byte // encoded identity keys
}

type chain struct {
	ck   []byte
	next uint32
}

// pqChain is one direction of SPQR's first epoch.
type pqChain struct {
	key []byte
	idx uint32
}

func (c *pqChain) next() []byte {
	c.idx++
	info := binary.BigEndian.AppendUint32(nil, c.idx)
	out := kdf(c.key, make([]byte, 32), string(info)+"Signal PQ Ratchet V1 Chain Next", 64)
	c.key = out[:32]
	return out[32:]
}

func newParty(k *Keys, local, remote []byte, initiator bool) *Party {
	start := kdf(k[64:], make([]byte, 32), "Signal PQ Ratchet V1 Chain  Start", 96)
	p := &Party{rk: k[:32], chains: map[string]*chain{}, local: local, remote: remote}
	a2b, b2a := pqChain{key: start[32:64]}, pqChain{key: start[64:96]}
	if initiator {
		p.pqSend, p.pqRecv = a2b, b2a
	} else {
		p.pqSend, p.pqRecv = b2a, a2b
	}
	return p
}

// NewInitiator starts Alice's side from PQXDH's keys, both encoded identity
// keys (local first) and Bob's signed prekey, with her first sending step
// taken.
func NewInitiator(k *Keys, local, remote []byte, spk *ecdh.PublicKey) (*Party, error) {
	p := newParty(k, local, remote, true)
	p.chains[string(spk.Bytes())] = &chain{ck: k[32:64]}
	var err error
	if p.dhs, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	dh, err := p.dhs.ECDH(spk)
	if err != nil {
		return nil, err
	}
	out := kdf(dh, p.rk, "WhisperRatchet", 64)
	p.rk, p.cks = out[:32], out[32:]
	return p, nil
}

// NewResponder starts Bob's side, whose ratchet key is the signed prekey
// until Alice's first message arrives.
func NewResponder(k *Keys, local, remote []byte, spk *ecdh.PrivateKey) *Party {
	p := newParty(k, local, remote, false)
	p.dhs = spk
	return p
}

// Encrypt returns the SignalMessage of pt.
func (p *Party) Encrypt(pt []byte) []byte {
	seed := mac(p.cks, []byte{1})
	p.cks = mac(p.cks, []byte{2})
	salt := p.pqSend.next()
	mk := kdf(seed, salt, "WhisperMessageKeys", 80)
	block, _ := aes.NewCipher(mk[:32])
	pad := aes.BlockSize - len(pt)%aes.BlockSize
	ct := make([]byte, len(pt)+pad)
	copy(ct, pt)
	for i := len(pt); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, mk[64:80]).CryptBlocks(ct, ct)
	// SPQR V1 None: version, epoch 1, index, type None (varints).
	pq := binary.AppendUvarint([]byte{1, 1}, uint64(p.pqSend.idx))
	pq = append(pq, 0)
	b := []byte{0x44, 0x0a, 33}
	b = append(b, encode(p.dhs.PublicKey())...)
	b = binary.AppendUvarint(append(b, 0x10), uint64(p.ns))
	b = binary.AppendUvarint(append(b, 0x18), uint64(p.pn))
	b = binary.AppendUvarint(append(b, 0x22), uint64(len(ct)))
	b = append(b, ct...)
	b = binary.AppendUvarint(append(b, 0x2a), uint64(len(pq)))
	b = append(b, pq...)
	p.ns++
	return append(b, mac(mk[32:64], p.local, p.remote, b)[:8]...)
}

// walk calls f with each field of a protobuf message: its number and its
// varint or bytes.
func walk(b []byte, f func(num uint64, v uint64, data []byte)) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errRefused
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errRefused
			}
			b = b[n:]
			f(key>>3, v, nil)
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errRefused
			}
			f(key>>3, 0, b[n:n+int(l)])
			b = b[n+int(l):]
		default:
			return errRefused
		}
	}
	return nil
}

// Decrypt decrypts a SignalMessage.
func (p *Party) Decrypt(wire []byte) ([]byte, error) {
	if len(wire) < 9 || wire[0] != 0x44 {
		return nil, errRefused
	}
	body, tag := wire[:len(wire)-8], wire[len(wire)-8:]
	var theirs, ct, pq []byte
	var counter uint32
	if err := walk(body[1:], func(num, v uint64, data []byte) {
		switch num {
		case 1:
			theirs = data
		case 2:
			counter = uint32(v)
		case 4:
			ct = data
		case 5:
			pq = data
		}
	}); err != nil {
		return nil, err
	}
	if len(theirs) != 33 || len(ct) == 0 || len(ct)%aes.BlockSize != 0 || len(pq) < 4 || pq[0] != 1 {
		return nil, errRefused
	}
	c := p.chains[string(theirs[1:])]
	if c == nil {
		pub, err := decodeEC(theirs)
		if err != nil {
			return nil, err
		}
		dh, err := p.dhs.ECDH(pub)
		if err != nil {
			return nil, err
		}
		out := kdf(dh, p.rk, "WhisperRatchet", 64)
		c = &chain{ck: out[32:]}
		p.chains[string(theirs[1:])] = c
		if p.dhs, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		dh, _ = p.dhs.ECDH(pub)
		out = kdf(dh, out[:32], "WhisperRatchet", 64)
		p.rk, p.cks = out[:32], out[32:]
		p.pn, p.ns = max(p.ns, 1)-1, 0
	}
	for c.next < counter {
		c.ck = mac(c.ck, []byte{2})
		c.next++
	}
	seed := mac(c.ck, []byte{1})
	c.ck, c.next = mac(c.ck, []byte{2}), c.next+1
	epoch, n := binary.Uvarint(pq[1:])
	index, m := binary.Uvarint(pq[1+n:])
	if n != 1 || epoch != 1 || m <= 0 || index == 0 {
		return nil, errRefused
	}
	var salt []byte
	for uint64(p.pqRecv.idx) < index {
		salt = p.pqRecv.next()
	}
	mk := kdf(seed, salt, "WhisperMessageKeys", 80)
	if !hmac.Equal(mac(mk[32:64], p.remote, p.local, body)[:8], tag) {
		return nil, errRefused
	}
	block, _ := aes.NewCipher(mk[:32])
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, mk[64:80]).CryptBlocks(out, ct)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errRefused
	}
	return out[:len(out)-pad], nil
}

// Bundle is a responder's bundle as a server hands it out: encoded keys
// (type byte first) and their signatures, which the floor verifies with
// Ed25519 under Signer in place of XEdDSA under the identity key.
type Bundle struct {
	Identity, SignedPreKey, OneTimePreKey, KyberPreKey []byte
	SignedPreKeySignature, KyberPreKeySignature        []byte
	SignedPreKeyID, OneTimePreKeyID, KyberPreKeyID     uint32
	Signer                                             ed25519.PublicKey
}

// PreKeys is the responder's private side as stored: the identity key,
// the signed and one-time prekeys (X25519 scalars) and the Kyber prekey's
// 64-byte ML-KEM seed.
type PreKeys struct {
	Identity, SignedPreKey, OneTimePreKey, KyberSeed []byte
}

// NewPreKeys makes a responder's keys and its bundle, with a one-time
// prekey (ids 1, 2 and 3).
func NewPreKeys() (*PreKeys, *Bundle) {
	x := ecdh.X25519()
	ik, _ := x.GenerateKey(rand.Reader)
	spk, _ := x.GenerateKey(rand.Reader)
	opk, _ := x.GenerateKey(rand.Reader)
	dk, _ := mlkem.GenerateKey1024()
	signer, sk, _ := ed25519.GenerateKey(rand.Reader)
	b := &Bundle{Identity: encode(ik.PublicKey()), SignedPreKey: encode(spk.PublicKey()), OneTimePreKey: encode(opk.PublicKey()),
		KyberPreKey:    append([]byte{8}, dk.EncapsulationKey().Bytes()...),
		SignedPreKeyID: 1, OneTimePreKeyID: 2, KyberPreKeyID: 3, Signer: signer}
	b.SignedPreKeySignature = ed25519.Sign(sk, b.SignedPreKey)
	b.KyberPreKeySignature = ed25519.Sign(sk, b.KyberPreKey)
	return &PreKeys{Identity: ik.Bytes(), SignedPreKey: spk.Bytes(), OneTimePreKey: opk.Bytes(), KyberSeed: dk.Bytes()}, b
}

// kyberSecret is libsignal's Kyber1024 output step on ML-KEM-1024's shared
// secret: SHAKE256(ss || SHA3-256(ct)), 32 bytes.
func kyberSecret(ss, ct []byte) []byte {
	h := sha3.Sum256(ct)
	return sha3.SumSHAKE256(append(ss, h[:]...), 32)
}

// dhPair is one of PQXDH's Diffie-Hellman agreements.
type dhPair struct {
	k *ecdh.PrivateKey
	p *ecdh.PublicKey
}

// agree runs PQXDH's agreements in order.
func agree(pairs []dhPair) ([][]byte, error) {
	dhs := make([][]byte, 0, len(pairs))
	for _, pr := range pairs {
		dh, err := pr.k.ECDH(pr.p)
		if err != nil {
			return nil, err
		}
		dhs = append(dhs, dh)
	}
	return dhs, nil
}

func pqxdhKeys(dhs [][]byte, kss []byte) *Keys {
	ikm := make([]byte, 32, 32*6)
	for i := range ikm {
		ikm[i] = 0xff
	}
	for _, dh := range dhs {
		ikm = append(ikm, dh...)
	}
	ikm = append(ikm, kss...)
	var k Keys
	copy(k[:], kdf(ikm, nil, "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024", 96))
	return &k
}

// Initiate is Alice's setup with bundle b: PQXDH, her session, and the
// PreKeySignalMessage carrying pt.
func Initiate(identity *ecdh.PrivateKey, regID uint32, b *Bundle, pt []byte) (*Party, []byte, error) {
	if !ed25519.Verify(b.Signer, b.SignedPreKey, b.SignedPreKeySignature) || !ed25519.Verify(b.Signer, b.KyberPreKey, b.KyberPreKeySignature) {
		return nil, nil, errRefused
	}
	ikB, err1 := decodeEC(b.Identity)
	spkB, err2 := decodeEC(b.SignedPreKey)
	if err1 != nil || err2 != nil || len(b.KyberPreKey) < 1 || b.KyberPreKey[0] != 8 {
		return nil, nil, errRefused
	}
	ekK, err := mlkem.NewEncapsulationKey1024(b.KyberPreKey[1:])
	if err != nil {
		return nil, nil, err
	}
	ek, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	pairs := []dhPair{{identity, spkB}, {ek, ikB}, {ek, spkB}}
	if b.OneTimePreKey != nil {
		opkB, err := decodeEC(b.OneTimePreKey)
		if err != nil {
			return nil, nil, err
		}
		pairs = append(pairs, dhPair{ek, opkB})
	}
	dhs, err := agree(pairs)
	if err != nil {
		return nil, nil, err
	}
	ss, ct := ekK.Encapsulate()
	local := encode(identity.PublicKey())
	p, err := NewInitiator(pqxdhKeys(dhs, kyberSecret(ss, ct)), local, b.Identity, spkB)
	if err != nil {
		return nil, nil, err
	}
	inner := p.Encrypt(pt)
	m := []byte{0x44}
	if b.OneTimePreKey != nil {
		m = binary.AppendUvarint(append(m, 0x08), uint64(b.OneTimePreKeyID))
	}
	m = append(append(m, 0x12, 33), encode(ek.PublicKey())...)
	m = append(append(m, 0x1a, 33), local...)
	m = binary.AppendUvarint(append(m, 0x22), uint64(len(inner)))
	m = append(m, inner...)
	m = binary.AppendUvarint(append(m, 0x28), uint64(regID))
	m = binary.AppendUvarint(append(m, 0x30), uint64(b.SignedPreKeyID))
	m = binary.AppendUvarint(append(m, 0x38), uint64(b.KyberPreKeyID))
	m = binary.AppendUvarint(append(m, 0x42), uint64(1+len(ct)))
	m = append(append(m, 8), ct...)
	return p, m, nil
}

// Respond is Bob's setup from Alice's PreKeySignalMessage: PQXDH with the
// prekeys it names (the floor holds one of each, so the ids only select
// whether there is a one-time prekey), his session and the first message.
func (k *PreKeys) Respond(msg []byte) (*Party, []byte, error) {
	if len(msg) < 1 || msg[0] != 0x44 {
		return nil, nil, errRefused
	}
	var hasOPK bool
	var base, ik, inner, ct []byte
	if err := walk(msg[1:], func(num, _ uint64, data []byte) {
		switch num {
		case 1:
			hasOPK = true
		case 2:
			base = data
		case 3:
			ik = data
		case 4:
			inner = data
		case 8:
			ct = data
		}
	}); err != nil {
		return nil, nil, err
	}
	if len(ct) < 1 || ct[0] != 8 {
		return nil, nil, errRefused
	}
	x := ecdh.X25519()
	ikA, err1 := decodeEC(ik)
	ekA, err2 := decodeEC(base)
	ikB, err3 := x.NewPrivateKey(k.Identity)
	spk, err4 := x.NewPrivateKey(k.SignedPreKey)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, nil, err
	}
	pairs := []dhPair{{spk, ikA}, {ikB, ekA}, {spk, ekA}}
	if hasOPK {
		opk, err := x.NewPrivateKey(k.OneTimePreKey)
		if err != nil {
			return nil, nil, err
		}
		pairs = append(pairs, dhPair{opk, ekA})
	}
	dhs, err := agree(pairs)
	if err != nil {
		return nil, nil, err
	}
	dk, err := mlkem.NewDecapsulationKey1024(k.KyberSeed)
	if err != nil {
		return nil, nil, err
	}
	ss, err := dk.Decapsulate(ct[1:])
	if err != nil {
		return nil, nil, err
	}
	p := NewResponder(pqxdhKeys(dhs, kyberSecret(ss, ct[1:])), encode(ikB.PublicKey()), ik, spk)
	out, err := p.Decrypt(inner)
	if err != nil {
		return nil, nil, err
	}
	return p, out, nil
}
