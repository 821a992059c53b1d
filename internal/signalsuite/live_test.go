package signalsuite

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// goParty is a minimal libsignal-compatible party built from this module's
// pieces, for the live tests, in either role: PQXDH, libsignal's ratchet
// steps, SPQR None messages on the first epoch's chains, and the wire
// formats. It decrypts in order only and keeps no skipped keys; the real
// ratchet core comes with the session integration.
type goParty struct {
	t       *testing.T
	addr    string
	ik      *keys.IdentityKeyPair
	peer    *keys.PublicKey
	root    [KeySize]byte
	ratchet *keys.PrivateKey
	send    [KeySize]byte
	sendN   uint32
	prevN   uint32
	recv    map[string][KeySize]byte
	pqSend  spqr.Chain
	pqRecv  spqr.Chain
	prekey  *signalwire.PreKeySignalMessage // the initiator's, until the first reply
}

// newInitiator starts a session from PQXDH keys k and header h against
// libsignal's bundle b.
func newInitiator(t *testing.T, addr string, ik *keys.IdentityKeyPair, b *pqxdh.Bundle, k *pqxdh.Keys, h *pqxdh.Header) *goParty {
	a := &goParty{t: t, addr: addr, ik: ik, peer: b.IdentityKey, recv: map[string][KeySize]byte{}}
	a.recv[hex.EncodeToString(b.SignedPreKey.Encode())] = k.ChainKey
	e := spqr.Start(&k.PQRKey)
	a.pqSend, a.pqRecv = e.Chain(spqr.AToB), e.Chain(spqr.BToA)
	a.root = k.RootKey
	a.step(b.SignedPreKey)
	a.prekey = &signalwire.PreKeySignalMessage{
		HasPreKeyID: h.HasOneTimePreKey, PreKeyID: h.OneTimePreKeyID,
		BaseKey: h.BaseKey, IdentityKey: ik.PublicKey(), RegistrationID: 4242,
		SignedPreKeyID: h.SignedPreKeyID, KyberPreKeyID: h.KyberPreKeyID, KyberCiphertext: h.KyberCiphertext,
	}
	return a
}

// newResponder starts the responder's side from PQXDH keys k: its ratchet
// key is SPK_B until the initiator's first ratchet key arrives.
func newResponder(t *testing.T, ik *keys.IdentityKeyPair, spk *keys.PrivateKey, k *pqxdh.Keys, peer *keys.PublicKey) *goParty {
	a := &goParty{t: t, ik: ik, peer: peer, root: k.RootKey, ratchet: spk, send: k.ChainKey, recv: map[string][KeySize]byte{}}
	e := spqr.Start(&k.PQRKey)
	a.pqSend, a.pqRecv = e.Chain(spqr.BToA), e.Chain(spqr.AToB)
	return a
}

// step is the sending half of a DH ratchet step: a fresh ratchet key and a
// new sending chain against their ratchet key.
func (a *goParty) step(theirs *keys.PublicKey) {
	var err error
	if a.ratchet, err = keys.GeneratePrivateKey(); err != nil {
		a.t.Fatal(err)
	}
	dh, err := a.ratchet.ECDH(theirs)
	if err != nil {
		a.t.Fatal(err)
	}
	a.root, a.send = RootStep(&a.root, dh)
	// libsignal writes max(n − 1, 0) for a previous chain of n messages
	// (and ignores the field on receipt).
	a.prevN = max(a.sendN, 1) - 1
	a.sendN = 0
}

// encrypt returns the next message: a PreKeySignalMessage until Bob has
// answered, a SignalMessage afterwards.
func (a *goParty) encrypt(pt []byte) (int, []byte) {
	var seed [KeySize]byte
	seed, a.send = ChainStep(&a.send)
	salt := a.pqSend.Next()
	h := heldKeys{seed: seed, salt: salt, counter: a.sendN, pqIndex: a.pqSend.Index(), ratchet: a.ratchet.PublicKey(), prevN: a.prevN}
	a.sendN++
	return a.seal(&h, pt)
}

// heldKeys are the keys of a message skipped on purpose, to be sent later.
type heldKeys struct {
	seed, salt [KeySize]byte
	counter    uint32
	pqIndex    uint32
	ratchet    *keys.PublicKey
	prevN      uint32
}

// skip moves the sending chain and the SPQR chain n messages ahead without
// sending them, keeping their keys so that encryptHeld can send them late.
func (a *goParty) skip(n int) []heldKeys {
	out := make([]heldKeys, n)
	for i := range out {
		out[i].seed, a.send = ChainStep(&a.send)
		out[i].salt = a.pqSend.Next()
		out[i].counter, out[i].pqIndex = a.sendN, a.pqSend.Index()
		out[i].ratchet, out[i].prevN = a.ratchet.PublicKey(), a.prevN
		a.sendN++
	}
	return out
}

// encryptHeld sends a message with the keys of a skipped position.
func (a *goParty) encryptHeld(h *heldKeys, pt []byte) (int, []byte) {
	return a.seal(h, pt)
}

// seal builds the message with the keys and header fields of h.
func (a *goParty) seal(h *heldKeys, pt []byte) (int, []byte) {
	mk := DeriveMessageKeys(&h.seed, h.salt[:])
	defer mk.Clear()
	m := &signalwire.SignalMessage{
		RatchetKey: h.ratchet, Counter: h.counter, PreviousCounter: h.prevN,
		Ciphertext: Encrypt(mk, pt), PQRatchet: spqr.AppendNone(nil, 1, h.pqIndex),
	}
	body, err := m.AppendBody(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	tag := Tag(mk, a.ik.PublicKey(), a.peer, body)
	wire := append(body, tag[:]...)
	if a.prekey == nil {
		return signalwire.TypeWhisper, wire
	}
	p := *a.prekey
	p.Message = wire
	out, err := p.Append(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	return signalwire.TypePreKey, out
}

// decrypt opens a SignalMessage from the peer, in order.
func (a *goParty) decrypt(wire []byte) ([]byte, error) {
	m, body, mac, err := signalwire.ParseSignalMessage(wire)
	if err != nil {
		return nil, err
	}
	key := hex.EncodeToString(m.RatchetKey.Encode())
	ck, ok := a.recv[key]
	if !ok {
		dh, err := a.ratchet.ECDH(m.RatchetKey)
		if err != nil {
			return nil, err
		}
		a.root, ck = RootStep(&a.root, dh)
		a.recv[key] = ck
		a.step(m.RatchetKey)
		a.prekey = nil
	}
	var seed [KeySize]byte
	for range m.Counter + 1 {
		seed, ck = ChainStep(&ck)
	}
	pq, err := spqr.Parse(m.PQRatchet)
	if err != nil {
		return nil, err
	}
	salt, err := a.pqRecv.KeyAt(pq.Index)
	if err != nil {
		return nil, err
	}
	mk := DeriveMessageKeys(&seed, salt[:])
	defer mk.Clear()
	return Open(mk, a.peer, a.ik.PublicKey(), body, mac, m.Ciphertext)
}

func liveBundle(t *testing.T, s *libsignaltest.Session) *pqxdh.Bundle {
	h := libsignaltest.Hex
	b := &pqxdh.Bundle{
		IdentityKey: must(keys.DecodePublicKey(h(t, s.Bundle.IdentityKey))), SignedPreKeyID: s.Bundle.SignedPreKeyID,
		SignedPreKey: must(keys.DecodePublicKey(h(t, s.Bundle.SignedPreKey))), SignedPreKeySignature: h(t, s.Bundle.SignedPreKeySignature),
		KyberPreKeyID: s.Bundle.KyberPreKeyID, KyberPreKey: must(kyber.ParsePublicKey(h(t, s.Bundle.KyberPreKey))),
		KyberPreKeySignature: h(t, s.Bundle.KyberPreKeySignature),
	}
	if s.Bundle.PreKey != nil {
		b.OneTimePreKeyID, b.OneTimePreKey = *s.Bundle.PreKeyID, must(keys.DecodePublicKey(h(t, *s.Bundle.PreKey)))
	}
	return b
}

func (a *goParty) sendTo(p *libsignaltest.Peer, pt []byte) libsignaltest.Reply {
	typ, wire := a.encrypt(pt)
	return p.Call(map[string]any{"op": "decrypt", "from": a.addr, "type": typ, "wire": hex.EncodeToString(wire)})
}

// TestLiveGoInitiator holds sessions with libsignal 0.103 as the
// responder, with and without a one-time prekey: Go's PreKeySignalMessages
// (PQXDH with Kyber encapsulation, SPQR None messages) decrypt in libsignal,
// libsignal's replies decrypt here, and the following SignalMessages after
// Go's own DH ratchet step decrypt there. A tampered message is refused by
// libsignal and the untouched one still decrypts.
func TestLiveGoInitiator(t *testing.T) {
	v := libsignaltest.Load(t)
	for i := range v.Sessions[:2] {
		s := &v.Sessions[i]
		t.Run(s.Name, func(t *testing.T) {
			p := libsignaltest.Live(t, s.Name)
			ik, _ := keys.GenerateIdentityKeyPair()
			b := liveBundle(t, s)
			in, err := pqxdh.Initiate(ik, b)
			if err != nil {
				t.Fatal(err)
			}
			a := newInitiator(t, "go-alice", ik, b, &in.Keys, &in.Header)
			n := 0
			expect := func(r libsignaltest.Reply, pt []byte) {
				t.Helper()
				if !r.OK || r.Plaintext != hex.EncodeToString(pt) {
					t.Fatalf("libsignal: %+v", r)
				}
				n++
			}
			for j := range 3 {
				pt := []byte(fmt.Sprintf("prekey message %d from Go", j))
				expect(a.sendTo(p, pt), pt)
			}
			for round := range 3 {
				for j := range 2 {
					pt := []byte(strings.Repeat(fmt.Sprintf("reply %d.%d ", round, j), j*7+1))
					r := p.Call(map[string]any{"op": "encrypt", "to": a.addr, "plaintext": hex.EncodeToString(pt)})
					if !r.OK || r.Type != signalwire.TypeWhisper {
						t.Fatalf("libsignal encrypt: %+v", r)
					}
					got, err := a.decrypt(libsignaltest.Hex(t, r.Wire))
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("round %d: libsignal's reply %d: %v", round, j, err)
					}
					n++
				}
				for j := range 2 {
					pt := bytes.Repeat([]byte{byte(round), byte(j)}, 9*j+round)
					typ, wire := a.encrypt(pt)
					if typ != signalwire.TypeWhisper {
						t.Fatalf("message type %d after the reply", typ)
					}
					bad := bytes.Clone(wire)
					bad[len(bad)/2] ^= 0x01
					r := p.Call(map[string]any{"op": "decrypt", "from": a.addr, "type": typ, "wire": hex.EncodeToString(bad)})
					if r.OK {
						t.Fatal("libsignal accepted a tampered message")
					}
					expect(p.Call(map[string]any{"op": "decrypt", "from": a.addr, "type": typ, "wire": hex.EncodeToString(wire)}), pt)
				}
			}
			t.Logf("%d messages exchanged with libsignal", n)
		})
	}
}

// TestLiveKyberRejection settles how libsignal's Kyber1024 answers a
// ciphertext that fails its re-encryption check. Go forges the PQXDH Kyber
// ciphertext (one bit flipped) and derives the session keys from the secret
// package kyber's Decapsulate gives for the forgery (ML-KEM's implicit
// rejection, then the Kyber output step). libsignal decrypts that first
// message, so its rejection key is the same; with the genuine secret
// instead, it refuses.
func TestLiveKyberRejection(t *testing.T) {
	s := &libsignaltest.Load(t).Sessions[1] // no one-time prekey
	b := liveBundle(t, s)
	bobSeed := must(kyber.NewPrivateKey(libsignaltest.Hex(t, s.Bob.KyberPreKey.Seed)))
	for _, c := range []struct {
		name     string
		rejected bool // derive from the rejection key (true) or the genuine one
		want     bool
	}{
		{"forged ciphertext, rejection key", true, true},
		{"forged ciphertext, genuine key", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := libsignaltest.Live(t, s.Name)
			ik, _ := keys.GenerateIdentityKeyPair()
			ek, _ := keys.GeneratePrivateKey()
			ss, ct := b.KyberPreKey.Encapsulate()
			ct[700] ^= 0x10
			if c.rejected {
				ss = must(bobSeed.Decapsulate(ct))
			}
			k := manualPQXDH(t, ik, ek, b, ss)
			h := &pqxdh.Header{IdentityKey: ik.PublicKey(), BaseKey: ek.PublicKey(), SignedPreKeyID: b.SignedPreKeyID,
				KyberPreKeyID: b.KyberPreKeyID, KyberCiphertext: ct}
			a := newInitiator(t, "go-forger", ik, b, k, h)
			pt := []byte("is the rejection key the same?")
			r := a.sendTo(p, pt)
			if r.OK != c.want || (r.OK && r.Plaintext != hex.EncodeToString(pt)) {
				t.Fatalf("libsignal: %+v, want ok=%t", r, c.want)
			}
		})
	}
}

// manualPQXDH derives the initiator's PQXDH keys by hand (no one-time
// prekey) from a chosen base key and Kyber secret, for the live tests that
// send what Initiate never would.
func manualPQXDH(t *testing.T, ik *keys.IdentityKeyPair, ek *keys.PrivateKey, b *pqxdh.Bundle, ss []byte) *pqxdh.Keys {
	ikm := bytes.Repeat([]byte{0xFF}, 32)
	ikm = append(ikm, must(ik.PrivateKey().ECDH(b.SignedPreKey))...)
	ikm = append(ikm, must(ek.ECDH(b.IdentityKey))...)
	ikm = append(ikm, must(ek.ECDH(b.SignedPreKey))...)
	ikm = append(ikm, ss...)
	out := must(hkdf.Key(sha256.New, ikm, nil, pqxdh.Info, 96))
	k := new(pqxdh.Keys)
	copy(k.RootKey[:], out[:32])
	copy(k.ChainKey[:], out[32:64])
	copy(k.PQRKey[:], out[64:])
	return k
}

// TestLiveBaseKeyCheck: a base key with a torsion component gives the same
// DH outputs as the honest key, so only libsignal's is_canonical check
// refuses it; libsignal does, and so does Respond (pqxdh's TestBaseKeyCheck).
func TestLiveBaseKeyCheck(t *testing.T) {
	s := &libsignaltest.Load(t).Sessions[1]
	b := liveBundle(t, s)
	for _, c := range []struct {
		name    string
		torsion bool
	}{{"honest base key", false}, {"base key plus a point of order 8", true}} {
		t.Run(c.name, func(t *testing.T) {
			p := libsignaltest.Live(t, s.Name)
			ik, _ := keys.GenerateIdentityKeyPair()
			ek, _ := keys.GeneratePrivateKey()
			ss, ct := b.KyberPreKey.Encapsulate()
			k := manualPQXDH(t, ik, ek, b, ss)
			base := ek.PublicKey()
			if c.torsion {
				base = must(keys.NewPublicKey(libsignaltest.AddTorsion(base.Bytes())))
			}
			h := &pqxdh.Header{IdentityKey: ik.PublicKey(), BaseKey: base, SignedPreKeyID: b.SignedPreKeyID,
				KyberPreKeyID: b.KyberPreKeyID, KyberCiphertext: ct}
			a := newInitiator(t, "go-base", ik, b, k, h)
			pt := []byte("base key check")
			r := a.sendTo(p, pt)
			if r.OK == c.torsion {
				t.Fatalf("libsignal: %+v", r)
			}
			if c.torsion {
				t.Logf("libsignal refused: %s", r.Error)
			}
		})
	}
}

// TestLiveGoResponder is the other role: libsignal processes a bundle that
// Go published (Go's spec-exact XEdDSA signatures, a Kyber prekey made by
// crypto/mlkem), sends PreKeySignalMessages that Go answers with Respond,
// and the two exchange messages both ways, with and without a one-time
// prekey.
func TestLiveGoResponder(t *testing.T) {
	for _, withOPK := range []bool{true, false} {
		t.Run(fmt.Sprintf("one-time prekey %t", withOPK), func(t *testing.T) {
			p := libsignaltest.Live(t, libsignaltest.Load(t).Sessions[0].Name)
			ik, _ := keys.GenerateIdentityKeyPair()
			spk := must(keys.GenerateSignedPreKey(ik, 21))
			kpk := must(kyber.GeneratePreKey(ik, 22, false))
			bundle := goBundle(ik, spk, kpk)
			var opk *keys.OneTimePreKey
			if withOPK {
				opk = must(keys.GenerateOneTimePreKeys(23, 1))[0]
				bundle["prekey_id"], bundle["prekey"] = 23, hex.EncodeToString(opk.PublicKey().Encode())
			}
			if r := p.Call(map[string]any{"op": "process_bundle", "as": "alice", "to": "go-bob", "bundle": bundle}); !r.OK {
				t.Fatalf("libsignal refused Go's bundle: %s", r.Error)
			}
			var bob *goParty
			var base *keys.PublicKey
			n := 0
			fromLibsignal := func(pt []byte) {
				t.Helper()
				r := p.Call(map[string]any{"op": "encrypt", "as": "alice", "to": "go-bob", "plaintext": hex.EncodeToString(pt)})
				if !r.OK {
					t.Fatalf("libsignal encrypt: %s", r.Error)
				}
				wire := libsignaltest.Hex(t, r.Wire)
				if r.Type == signalwire.TypePreKey {
					m, _, err := signalwire.ParsePreKeySignalMessage(wire)
					if err != nil {
						t.Fatal(err)
					}
					if bob == nil {
						k, err := pqxdh.Respond(ik, spk, opk, kpk, &pqxdh.Header{
							IdentityKey: m.IdentityKey, BaseKey: m.BaseKey, SignedPreKeyID: m.SignedPreKeyID,
							HasOneTimePreKey: m.HasPreKeyID, OneTimePreKeyID: m.PreKeyID,
							KyberPreKeyID: m.KyberPreKeyID, KyberCiphertext: m.KyberCiphertext,
						})
						if err != nil {
							t.Fatalf("Respond to libsignal: %v", err)
						}
						bob, base = newResponder(t, ik, spk.PrivateKey(), k, m.IdentityKey), m.BaseKey
					} else if !m.BaseKey.Equal(base) {
						t.Fatal("libsignal changed its base key within one session")
					}
					wire = m.Message
				} else if bob == nil {
					t.Fatalf("libsignal's first message has type %d", r.Type)
				}
				got, err := bob.decrypt(wire)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("libsignal's message: %v", err)
				}
				n++
			}
			toLibsignal := func(pt []byte) {
				t.Helper()
				typ, wire := bob.encrypt(pt)
				if typ != signalwire.TypeWhisper {
					t.Fatalf("responder sent type %d", typ)
				}
				bad := bytes.Clone(wire)
				bad[3] ^= 0x04
				if r := p.Call(map[string]any{"op": "decrypt", "as": "alice", "from": "go-bob", "type": typ, "wire": hex.EncodeToString(bad)}); r.OK {
					t.Fatal("libsignal accepted a tampered message")
				}
				r := p.Call(map[string]any{"op": "decrypt", "as": "alice", "from": "go-bob", "type": typ, "wire": hex.EncodeToString(wire)})
				if !r.OK || r.Plaintext != hex.EncodeToString(pt) {
					t.Fatalf("libsignal: %+v", r)
				}
				n++
			}
			for round := range 4 {
				for j := range round%3 + 1 {
					fromLibsignal([]byte(fmt.Sprintf("libsignal %d.%d", round, j)))
				}
				for j := range 2 - round%2 {
					toLibsignal(bytes.Repeat([]byte{byte(round), byte(j)}, 5*j+round))
				}
			}
			t.Logf("%d messages exchanged with libsignal", n)
		})
	}
}

// liveSession starts a Go-initiated session with libsignal and exchanges
// one message each way, so that the next Go message is a SignalMessage.
func liveSession(t *testing.T, s *libsignaltest.Session) (*goParty, *libsignaltest.Peer) {
	p := libsignaltest.Live(t, s.Name)
	ik, _ := keys.GenerateIdentityKeyPair()
	b := liveBundle(t, s)
	in := must(pqxdh.Initiate(ik, b))
	a := newInitiator(t, "go-alice", ik, b, &in.Keys, &in.Header)
	if r := a.sendTo(p, []byte("hello")); !r.OK {
		t.Fatalf("libsignal: %+v", r)
	}
	r := p.Call(map[string]any{"op": "encrypt", "to": a.addr, "plaintext": "00"})
	if _, err := a.decrypt(libsignaltest.Hex(t, r.Wire)); err != nil {
		t.Fatal(err)
	}
	return a, p
}

func (a *goParty) sendHeld(p *libsignaltest.Peer, h *heldKeys, pt []byte) libsignaltest.Reply {
	typ, wire := a.encryptHeld(h, pt)
	return p.Call(map[string]any{"op": "decrypt", "from": a.addr, "type": typ, "wire": hex.EncodeToString(wire)})
}

// TestLiveLimits measures libsignal's limits on skipped messages, which
// the ratchet core must match: a message after 24 999 skipped ones
// decrypts, after 25 000 it is refused (the Double Ratchet allows 25 000,
// SPQR's max_jump one fewer); of the skipped messages, the newest 2 000 can
// still be decrypted and the 2 001st newest is a DuplicatedMessage.
func TestLiveLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("50 000 chain steps")
	}
	s := &libsignaltest.Load(t).Sessions[1]
	t.Run("jump of 25000 refused", func(t *testing.T) {
		a, p := liveSession(t, s)
		a.skip(25000)
		if r := a.sendTo(p, []byte("too far")); r.OK {
			t.Fatal("libsignal accepted a message after 25 000 skipped")
		} else {
			t.Logf("libsignal: %s", r.Error)
		}
	})
	t.Run("jump of 24999 accepted, 2000 kept", func(t *testing.T) {
		a, p := liveSession(t, s)
		held := a.skip(24999)
		if r := a.sendTo(p, []byte("far")); !r.OK {
			t.Fatalf("libsignal refused a message after 24 999 skipped: %s", r.Error)
		}
		// held[len-1] is the newest skipped message.
		newest2000, oldest := &held[len(held)-2000], &held[len(held)-2001]
		if r := a.sendHeld(p, newest2000, []byte("2000th newest")); !r.OK {
			t.Errorf("the 2000th-newest skipped message: %s", r.Error)
		}
		r := a.sendHeld(p, oldest, []byte("2001st newest"))
		if r.OK {
			t.Error("the 2001st-newest skipped message decrypted")
		} else {
			t.Logf("2001st newest: %s", r.Error)
		}
		if r := a.sendHeld(p, &held[len(held)-1], []byte("newest")); !r.OK {
			t.Errorf("the newest skipped message: %s", r.Error)
		}
	})
}

// TestLiveNoX3DH: a version-3 PreKeySignalMessage (X3DH, no Kyber fields)
// is refused by libsignal 0.103, and so is a version-4 one without them;
// signalwire refuses to parse either.
func TestLiveNoX3DH(t *testing.T) {
	s := &libsignaltest.Load(t).Sessions[1]
	for _, version := range []byte{0x33, 0x44} {
		t.Run(fmt.Sprintf("%#x", version), func(t *testing.T) {
			p := libsignaltest.Live(t, s.Name)
			ik, _ := keys.GenerateIdentityKeyPair()
			b := liveBundle(t, s)
			in := must(pqxdh.Initiate(ik, b))
			a := newInitiator(t, "go-x3dh", ik, b, &in.Keys, &in.Header)
			_, wire := a.encrypt([]byte("no Kyber"))
			m, _, err := signalwire.ParsePreKeySignalMessage(wire)
			if err != nil {
				t.Fatal(err)
			}
			// Fields 2-6 only, in libsignal's order, behind the version byte.
			field := func(b []byte, num int, v []byte) []byte {
				b = append(b, byte(num<<3|2))
				for l := len(v); ; l >>= 7 {
					if l < 0x80 {
						b = append(b, byte(l))
						break
					}
					b = append(b, byte(l)|0x80)
				}
				return append(b, v...)
			}
			out := []byte{version}
			out = field(out, 2, m.BaseKey.Encode())
			out = field(out, 3, m.IdentityKey.Encode())
			out = field(out, 4, m.Message)
			out = append(out, 5<<3, byte(m.RegistrationID&0x7f)|0x80, byte(m.RegistrationID>>7), 6<<3, byte(m.SignedPreKeyID))
			if _, _, err := signalwire.ParsePreKeySignalMessage(out); err == nil {
				t.Error("signalwire parses a PreKeySignalMessage without Kyber fields")
			}
			r := p.Call(map[string]any{"op": "decrypt", "from": a.addr, "type": 3, "wire": hex.EncodeToString(out)})
			if r.OK {
				t.Fatal("libsignal accepted a PreKeySignalMessage without Kyber fields")
			}
			t.Logf("libsignal: %s", r.Error)
		})
	}
}

// TestLiveReceiverChains: libsignal keeps the receiving chains of the
// peer's 5 newest ratchet keys. Go holds back one message on each of its
// chains 2 to 7 (chain 1 carried the PreKey messages) and ratchets past each
// through a reply; libsignal has then seen chains 1 to 7, and of the held
// messages exactly those of chains 3 to 7 decrypt.
func TestLiveReceiverChains(t *testing.T) {
	a, p := liveSession(t, &libsignaltest.Load(t).Sessions[1])
	// a's current chain is its second (the first carried the PreKey
	// messages); hold one message on it and on every later one.
	var held []heldKeys
	for chain := range 6 {
		held = append(held, a.skip(1)...)
		if r := a.sendTo(p, []byte(fmt.Sprintf("chain %d", chain))); !r.OK {
			t.Fatalf("chain %d: %+v", chain, r)
		}
		r := p.Call(map[string]any{"op": "encrypt", "to": a.addr, "plaintext": "01"})
		if _, err := a.decrypt(libsignaltest.Hex(t, r.Wire)); err != nil {
			t.Fatal(err)
		}
	}
	// Newest first, so that each refusal is the chain limit's and not a
	// side effect of an earlier one.
	for i := len(held) - 1; i >= 0; i-- {
		r := a.sendHeld(p, &held[i], []byte("held"))
		t.Logf("held message on Go's chain %d: ok=%t %s", i+2, r.OK, r.Error)
		if want := i >= len(held)-5; r.OK != want {
			t.Errorf("held message on chain %d: ok=%t, want %t", i+2, r.OK, want)
		}
	}
}

// TestLiveArchivedSessions: when a second PQXDH session from the same peer
// arrives, libsignal archives the first instead of dropping it; a message
// on the archived session still decrypts (libsignal tries previous states)
// and makes it current again, and the same then holds for the second.
func TestLiveArchivedSessions(t *testing.T) {
	s := &libsignaltest.Load(t).Sessions[1]
	p := libsignaltest.Live(t, s.Name)
	ik, _ := keys.GenerateIdentityKeyPair()
	b := liveBundle(t, s)
	start := func() *goParty {
		in := must(pqxdh.Initiate(ik, b))
		a := newInitiator(t, "go-alice", ik, b, &in.Keys, &in.Header)
		if r := a.sendTo(p, []byte("new session")); !r.OK {
			t.Fatalf("libsignal: %+v", r)
		}
		r := p.Call(map[string]any{"op": "encrypt", "to": a.addr, "plaintext": "02"})
		if _, err := a.decrypt(libsignaltest.Hex(t, r.Wire)); err != nil {
			t.Fatalf("reply on the new session: %v", err)
		}
		return a
	}
	first := start()
	second := start()
	for i, a := range []*goParty{first, second, first, second} {
		pt := []byte(fmt.Sprintf("message %d", i))
		if r := a.sendTo(p, pt); !r.OK || r.Plaintext != hex.EncodeToString(pt) {
			t.Fatalf("message %d: %+v", i, r)
		}
		// libsignal answers on the session that just decrypted: it was
		// promoted to current.
		r := p.Call(map[string]any{"op": "encrypt", "to": a.addr, "plaintext": "03"})
		if _, err := a.decrypt(libsignaltest.Hex(t, r.Wire)); err != nil {
			t.Fatalf("after message %d libsignal answers on another session: %v", i, err)
		}
	}
}

// TestLiveUnacknowledgedAge: libsignal stops sending PreKeySignalMessages
// on a session that was never answered once it is older than 30 days.
func TestLiveUnacknowledgedAge(t *testing.T) {
	for _, c := range []struct {
		days int
		ok   bool
	}{{29, true}, {31, false}} {
		t.Run(fmt.Sprintf("%d days", c.days), func(t *testing.T) {
			p := libsignaltest.Live(t, libsignaltest.Load(t).Sessions[0].Name)
			ik, _ := keys.GenerateIdentityKeyPair()
			spk := must(keys.GenerateSignedPreKey(ik, 21))
			kpk := must(kyber.GeneratePreKey(ik, 22, true))
			bundle := goBundle(ik, spk, kpk)
			if r := p.Call(map[string]any{"op": "process_bundle", "as": "alice", "to": "go-bob", "bundle": bundle}); !r.OK {
				t.Fatal(r.Error)
			}
			r := p.Call(map[string]any{"op": "encrypt", "as": "alice", "to": "go-bob", "plaintext": "04", "days": c.days})
			if r.OK != c.ok {
				t.Fatalf("encrypt %d days later: %+v", c.days, r)
			}
			if !r.OK {
				t.Logf("libsignal: %s", r.Error)
			}
		})
	}
}

// goBundle is the bundle Go publishes, in live.mjs's request form, without
// a one-time prekey (the caller adds one).
func goBundle(ik *keys.IdentityKeyPair, spk *keys.SignedPreKey, kpk *kyber.PreKey) map[string]any {
	return map[string]any{
		"registration_id": 99, "device_id": 1, "prekey_id": nil, "prekey": nil,
		"signed_prekey_id": spk.ID(), "signed_prekey": hex.EncodeToString(spk.PublicKey().Encode()),
		"signed_prekey_signature": hex.EncodeToString(spk.Signature()),
		"identity_key":            hex.EncodeToString(ik.PublicKey().Encode()),
		"kyber_prekey_id":         kpk.ID(), "kyber_prekey": hex.EncodeToString(kpk.PublicKey().Encode()),
		"kyber_prekey_signature": hex.EncodeToString(kpk.Signature()),
	}
}
