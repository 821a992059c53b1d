package ratchet

import (
	"bytes"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// The live tests hold conversations between a ratchet Session and
// libsignal 0.103 itself (testdata/libsignal/live.mjs), in both roles. The
// PreKeySignalMessage wrapping that the session layer will do is done here
// by hand. They skip without Node unless RATCHETKIT_REQUIRE_LIBSIGNAL=1.

type liveMsg struct {
	typ  int
	wire []byte
	pt   []byte
}

// liveEnd is one side of a live conversation: send makes a message,
// recv takes one and reports whether it decrypted to pt.
type liveEnd struct {
	canSend func() bool
	send    func(pt []byte) liveMsg
	recv    func(m liveMsg) error
}

// TestLiveSignalRatchet: seeded conversations of 250 steps between a Go
// Session and libsignal, Go as initiator and as responder, with and
// without a one-time prekey: bursts both ways, deliveries reordered by up
// to 3 positions, tampered copies refused by both sides (Go's state
// unchanged) before the original decrypts, and replays refused.
func TestLiveSignalRatchet(t *testing.T) {
	v := libsignaltest.Load(t)
	for _, c := range []struct {
		name      string
		initiator bool
		session   int
	}{
		{"go initiator, one-time prekey", true, 0},
		{"go initiator, no one-time prekey", true, 1},
		{"go responder, one-time prekey", false, 0},
		{"go responder, no one-time prekey", false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := libsignaltest.Live(t, v.Sessions[c.session].Name)
			var goEnd, lsEnd liveEnd
			var s *Session
			if c.initiator {
				s, goEnd, lsEnd = liveGoInitiator(t, p, &v.Sessions[c.session])
			} else {
				s, goEnd, lsEnd = liveGoResponder(t, p, c.session == 0)
			}
			stats := liveConversation(t, mrand.New(mrand.NewPCG(uint64(c.session), 7)), goEnd, lsEnd, 250, func() *Session { return s })
			t.Logf("%v", stats)
		})
	}
}

func liveGoInitiator(t *testing.T, p *libsignaltest.Peer, ls *libsignaltest.Session) (*Session, liveEnd, liveEnd) {
	h := func(x string) []byte { return libsignaltest.Hex(t, x) }
	b := &pqxdh.Bundle{
		IdentityKey: must(keys.DecodePublicKey(h(ls.Bundle.IdentityKey))), SignedPreKeyID: ls.Bundle.SignedPreKeyID,
		SignedPreKey: must(keys.DecodePublicKey(h(ls.Bundle.SignedPreKey))), SignedPreKeySignature: h(ls.Bundle.SignedPreKeySignature),
		KyberPreKeyID: ls.Bundle.KyberPreKeyID, KyberPreKey: must(kyber.ParsePublicKey(h(ls.Bundle.KyberPreKey))),
		KyberPreKeySignature: h(ls.Bundle.KyberPreKeySignature),
	}
	if ls.Bundle.PreKey != nil {
		b.OneTimePreKeyID, b.OneTimePreKey = *ls.Bundle.PreKeyID, must(keys.DecodePublicKey(h(*ls.Bundle.PreKey)))
	}
	ik, _ := keys.GenerateIdentityKeyPair()
	in := must(pqxdh.Initiate(ik, b))
	s := must(NewSignalInitiator(&in.Keys, ik.PublicKey(), b.IdentityKey, b.SignedPreKey, nil))
	hdr := in.Header
	goEnd := liveEnd{
		canSend: func() bool { return true },
		send: func(pt []byte) liveMsg {
			wire := mustEncrypt(t, s, string(pt))
			if s.HasReceived() {
				return liveMsg{signalwire.TypeWhisper, wire, pt}
			}
			pk := signalwire.PreKeySignalMessage{
				HasPreKeyID: hdr.HasOneTimePreKey, PreKeyID: hdr.OneTimePreKeyID, BaseKey: hdr.BaseKey,
				IdentityKey: ik.PublicKey(), RegistrationID: 4242, SignedPreKeyID: hdr.SignedPreKeyID,
				KyberPreKeyID: hdr.KyberPreKeyID, KyberCiphertext: hdr.KyberCiphertext, Message: wire,
			}
			return liveMsg{signalwire.TypePreKey, must(pk.Append(nil)), pt}
		},
		recv: func(m liveMsg) error {
			got, err := s.Decrypt(unwrap(t, m.typ, m.wire))
			if err == nil && !bytes.Equal(got, m.pt) {
				t.Fatal("wrong plaintext from libsignal")
			}
			return err
		},
	}
	lsHasSession := false
	lsEnd := liveEnd{
		canSend: func() bool { return lsHasSession },
		send: func(pt []byte) liveMsg {
			r := p.Call(map[string]any{"op": "encrypt", "to": "go-alice", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return liveMsg{r.Type, libsignaltest.Hex(t, r.Wire), pt}
		},
		recv: func(m liveMsg) error {
			return liveReply(p.Call(map[string]any{"op": "decrypt", "from": "go-alice", "type": m.typ, "wire": hex.EncodeToString(m.wire)}), m.pt, &lsHasSession)
		},
	}
	return s, goEnd, lsEnd
}

func liveGoResponder(t *testing.T, p *libsignaltest.Peer, withOPK bool) (*Session, liveEnd, liveEnd) {
	ik, _ := keys.GenerateIdentityKeyPair()
	spk := must(keys.GenerateSignedPreKey(ik, 21))
	kpk := must(kyber.GeneratePreKey(ik, 22, false))
	bundle := map[string]any{
		"registration_id": 99, "device_id": 1, "prekey_id": nil, "prekey": nil,
		"signed_prekey_id": spk.ID(), "signed_prekey": hex.EncodeToString(spk.PublicKey().Encode()),
		"signed_prekey_signature": hex.EncodeToString(spk.Signature()),
		"identity_key":            hex.EncodeToString(ik.PublicKey().Encode()),
		"kyber_prekey_id":         kpk.ID(), "kyber_prekey": hex.EncodeToString(kpk.PublicKey().Encode()),
		"kyber_prekey_signature": hex.EncodeToString(kpk.Signature()),
	}
	var opk *keys.OneTimePreKey
	if withOPK {
		opk = must(keys.GenerateOneTimePreKeys(23, 1))[0]
		bundle["prekey_id"], bundle["prekey"] = 23, hex.EncodeToString(opk.PublicKey().Encode())
	}
	if r := p.Call(map[string]any{"op": "process_bundle", "as": "alice", "to": "go-bob", "bundle": bundle}); !r.OK {
		t.Fatalf("libsignal refused Go's bundle: %s", r.Error)
	}
	s := new(Session) // replaced by the first PreKeySignalMessage
	started := false
	goEnd := liveEnd{
		canSend: func() bool { return started && s.HasReceived() },
		send: func(pt []byte) liveMsg {
			return liveMsg{signalwire.TypeWhisper, mustEncrypt(t, s, string(pt)), pt}
		},
		recv: func(m liveMsg) error {
			wire := m.wire
			if m.typ == signalwire.TypePreKey {
				pk, _, err := signalwire.ParsePreKeySignalMessage(wire)
				if err != nil {
					return err
				}
				wire = pk.Message
				if !started {
					k, err := pqxdh.Respond(ik, spk, opk, kpk, &pqxdh.Header{
						IdentityKey: pk.IdentityKey, BaseKey: pk.BaseKey, SignedPreKeyID: pk.SignedPreKeyID,
						HasOneTimePreKey: pk.HasPreKeyID, OneTimePreKeyID: pk.PreKeyID,
						KyberPreKeyID: pk.KyberPreKeyID, KyberCiphertext: pk.KyberCiphertext,
					})
					if err != nil {
						return err
					}
					n := must(NewSignalResponder(k, ik.PublicKey(), pk.IdentityKey, spk.PrivateKey(), nil))
					if _, err := clone(t, n).Decrypt(wire); err != nil {
						return err // a session is kept only for a message that decrypts
					}
					*s, started = *n, true
				}
			}
			if !started {
				return fmt.Errorf("a SignalMessage before any session")
			}
			got, err := s.Decrypt(wire)
			if err == nil && !bytes.Equal(got, m.pt) {
				t.Fatal("wrong plaintext from libsignal")
			}
			return err
		},
	}
	lsEnd := liveEnd{
		canSend: func() bool { return true },
		send: func(pt []byte) liveMsg {
			r := p.Call(map[string]any{"op": "encrypt", "as": "alice", "to": "go-bob", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return liveMsg{r.Type, libsignaltest.Hex(t, r.Wire), pt}
		},
		recv: func(m liveMsg) error {
			var ok bool
			return liveReply(p.Call(map[string]any{"op": "decrypt", "as": "alice", "from": "go-bob", "type": m.typ, "wire": hex.EncodeToString(m.wire)}), m.pt, &ok)
		},
	}
	return s, goEnd, lsEnd
}

func liveReply(r libsignaltest.Reply, pt []byte, ok *bool) error {
	if !r.OK {
		return fmt.Errorf("libsignal: %s", r.Error)
	}
	if r.Plaintext != hex.EncodeToString(pt) {
		return fmt.Errorf("libsignal decrypted another plaintext")
	}
	*ok = true
	return nil
}

// liveConversation runs the seeded steps; session returns Go's current
// Session, whose state a refused message must leave unchanged.
func liveConversation(t *testing.T, rng *mrand.Rand, goEnd, lsEnd liveEnd, steps int, session func() *Session) map[string]int {
	ends := [2]liveEnd{goEnd, lsEnd}
	var queue [2][]liveMsg // queue[i]: messages to end i
	stats := map[string]int{}
	for step := range steps {
		i := rng.IntN(2)
		if rng.IntN(2) == 0 {
			if !ends[i].canSend() {
				continue
			}
			for range 1 + rng.IntN(3) {
				pt := []byte(fmt.Sprintf("step %d from %d: %s", step, i, bytes.Repeat([]byte{'x'}, rng.IntN(40))))
				queue[1-i] = append(queue[1-i], ends[i].send(pt))
				stats[fmt.Sprint("sent by ", []string{"go", "libsignal"}[i])]++
			}
			continue
		}
		q := queue[i]
		if len(q) == 0 {
			continue
		}
		k := rng.IntN(min(len(q), 4))
		m := q[k]
		queue[i] = append(q[:k], q[k+1:]...)
		var before []byte
		if i == 0 && session().pq != nil {
			before = state(t, session())
		}
		if rng.IntN(8) == 0 && (i == 1 || before != nil) {
			bad := tamperInner(t, rng, m)
			if err := ends[i].recv(liveMsg{m.typ, bad, m.pt}); err == nil {
				t.Fatalf("step %d: end %d accepted a tampered message", step, i)
			}
			if before != nil && !bytes.Equal(before, state(t, session())) {
				t.Fatalf("step %d: a tampered message changed Go's state", step)
			}
			stats["tampered refused"]++
		}
		if err := ends[i].recv(m); err != nil {
			t.Fatalf("step %d: end %d refused a message: %v", step, i, err)
		}
		stats["delivered"]++
		if rng.IntN(10) == 0 {
			if i == 0 {
				before = state(t, session())
			}
			if err := ends[i].recv(m); err == nil {
				t.Fatalf("step %d: end %d accepted a replay", step, i)
			}
			if i == 0 && !bytes.Equal(before, state(t, session())) {
				t.Fatalf("step %d: a replay changed Go's state", step)
			}
			stats["replay refused"]++
		}
	}
	if stats["delivered"] < steps/4 || stats["tampered refused"] == 0 || stats["replay refused"] == 0 {
		t.Fatalf("a conversation that tests little: %v", stats)
	}
	return stats
}

// tamperInner flips one bit near the end of the SignalMessage in m (inside
// a PreKeySignalMessage, its message field: the outer fields are not
// authenticated, and both libsignal and a session whose base key matches
// ignore them after the first).
func tamperInner(t *testing.T, rng *mrand.Rand, m liveMsg) []byte {
	flip := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-1-rng.IntN(min(40, len(b)-1))] ^= byte(1 << rng.IntN(8))
		return b
	}
	if m.typ != signalwire.TypePreKey {
		return flip(m.wire)
	}
	pk, _, err := signalwire.ParsePreKeySignalMessage(m.wire)
	if err != nil {
		t.Fatal(err)
	}
	pk.Message = flip(pk.Message)
	return must(pk.Append(nil))
}

// TestLiveSignalJump: libsignal takes a Go Session's message after 24 999
// skipped ones and refuses it after 25 000, and of the skipped ones keeps
// the newest 2 000: the same numbers TestSignalJumpLimit holds the Go
// receiver to.
func TestLiveSignalJump(t *testing.T) {
	if testing.Short() {
		t.Skip("50 000 messages")
	}
	v := libsignaltest.Load(t)
	for _, skipped := range []int{24999, 25000} {
		t.Run(fmt.Sprint(skipped), func(t *testing.T) {
			p := libsignaltest.Live(t, v.Sessions[1].Name)
			s, goEnd, lsEnd := liveGoInitiator(t, p, &v.Sessions[1])
			if err := lsEnd.recv(goEnd.send([]byte("hello"))); err != nil {
				t.Fatal(err)
			}
			if err := goEnd.recv(lsEnd.send([]byte("hi"))); err != nil {
				t.Fatal(err)
			}
			ms := held(t, s, skipped+1)
			last := liveMsg{signalwire.TypeWhisper, ms[skipped], []byte(fmt.Sprint("m", skipped))}
			err := lsEnd.recv(last)
			if skipped == 25000 {
				if err == nil {
					t.Fatal("libsignal took a message after 25 000 skipped")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, ok := range map[int]bool{skipped - 2000: true, skipped - 2001: false} {
				err := lsEnd.recv(liveMsg{signalwire.TypeWhisper, ms[i], []byte(fmt.Sprint("m", i))})
				if (err == nil) != ok {
					t.Errorf("skipped message %d back: %v", skipped-i, err)
				}
			}
		})
	}
}
