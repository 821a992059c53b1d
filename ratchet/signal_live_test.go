package ratchet

import (
	"bytes"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// The live tests hold conversations between a ratchet Session and
// libsignal 0.103 itself (testdata/libsignal/live.mjs), in both roles. The
// PreKeySignalMessage wrapping that the session layer will do is done here
// by hand. They skip without Node unless RATCHETKIT_REQUIRE_LIBSIGNAL=1.

// liveSteps is the length of each live conversation; liveMinEpoch the SPQR
// wire epoch that, by its end, messages of each side must have reached and
// decrypted in (a message of wire epoch 4 is keyed from the chains of the
// braid's third epoch secret).
const (
	liveSteps    = 2000
	liveMinEpoch = 4
)

// TestLiveSignalRatchet: seeded conversations of liveSteps steps
// (signallive.Conversation, paced) between a Go Session and libsignal, Go
// as initiator and as responder, with and without a one-time prekey:
// bursts both ways, deliveries reordered by up to 5 positions, lost
// messages, tampered copies refused by both sides (Go's state unchanged)
// before the original decrypts, and replays refused. Both sides' SPQR
// epochs must reach liveMinEpoch, with messages of those epochs
// decrypting each way.
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
			var goEnd, lsEnd signallive.End
			var s *Session
			if c.initiator {
				s, goEnd, lsEnd = liveGoInitiator(t, p, &v.Sessions[c.session], nil)
			} else {
				s, goEnd, lsEnd = liveGoResponder(t, p, c.session == 0, nil)
			}
			ep := &signallive.Epochs{MinEpoch: liveMinEpoch, Window: 10}
			stats := signallive.Conversation(t, mrand.New(mrand.NewPCG(uint64(c.session), 7)), ep.Track(t, 0, goEnd), ep.Track(t, 1, lsEnd), liveSteps, 8,
				func() ([]byte, bool) {
					if s.sig == nil { // the responder before its first message
						return nil, false
					}
					return state(t, s), true
				})
			t.Logf("%v; %v", stats, ep)
			ep.Check(t, 10)
		})
	}
}

func liveGoInitiator(t *testing.T, p *libsignaltest.Peer, ls *libsignaltest.Session, cfg *Config) (*Session, signallive.End, signallive.End) {
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
	s := must(NewSignalInitiator(&in.Keys, ik.PublicKey(), b.IdentityKey, b.SignedPreKey, cfg))
	hdr := in.Header
	goEnd := signallive.End{
		CanSend: func() bool { return true },
		Send: func(pt []byte) signallive.Msg {
			wire := mustEncrypt(t, s, string(pt))
			if s.HasReceived() {
				return signallive.Msg{Type: signalwire.TypeWhisper, Wire: wire, Plaintext: pt}
			}
			pk := signalwire.PreKeySignalMessage{
				HasPreKeyID: hdr.HasOneTimePreKey, PreKeyID: hdr.OneTimePreKeyID, BaseKey: hdr.BaseKey,
				IdentityKey: ik.PublicKey(), RegistrationID: 4242, SignedPreKeyID: hdr.SignedPreKeyID,
				KyberPreKeyID: hdr.KyberPreKeyID, KyberCiphertext: hdr.KyberCiphertext, Message: wire,
			}
			return signallive.Msg{Type: signalwire.TypePreKey, Wire: must(pk.Append(nil)), Plaintext: pt}
		},
		Recv: func(m signallive.Msg) error {
			got, err := s.Decrypt(unwrap(t, m.Type, m.Wire))
			if err == nil && !bytes.Equal(got, m.Plaintext) {
				t.Fatal("wrong plaintext from libsignal")
			}
			return err
		},
	}
	lsHasSession := false
	lsEnd := signallive.End{
		CanSend: func() bool { return lsHasSession },
		Send: func(pt []byte) signallive.Msg {
			r := p.Call(map[string]any{"op": "encrypt", "to": "go-alice", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return signallive.Msg{Type: r.Type, Wire: libsignaltest.Hex(t, r.Wire), Plaintext: pt}
		},
		Recv: func(m signallive.Msg) error {
			return signallive.CheckReply(p.Call(map[string]any{"op": "decrypt", "from": "go-alice", "type": m.Type, "wire": hex.EncodeToString(m.Wire)}), m.Plaintext, &lsHasSession)
		},
	}
	return s, goEnd, lsEnd
}

func liveGoResponder(t *testing.T, p *libsignaltest.Peer, withOPK bool, cfg *Config) (*Session, signallive.End, signallive.End) {
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
	goEnd := signallive.End{
		CanSend: func() bool { return started && s.HasReceived() },
		Send: func(pt []byte) signallive.Msg {
			return signallive.Msg{Type: signalwire.TypeWhisper, Wire: mustEncrypt(t, s, string(pt)), Plaintext: pt}
		},
		Recv: func(m signallive.Msg) error {
			wire := m.Wire
			if m.Type == signalwire.TypePreKey {
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
					n := must(NewSignalResponder(k, ik.PublicKey(), pk.IdentityKey, spk.PrivateKey(), cfg))
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
			if err == nil && !bytes.Equal(got, m.Plaintext) {
				t.Fatal("wrong plaintext from libsignal")
			}
			return err
		},
	}
	lsEnd := signallive.End{
		CanSend: func() bool { return true },
		Send: func(pt []byte) signallive.Msg {
			r := p.Call(map[string]any{"op": "encrypt", "as": "alice", "to": "go-bob", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return signallive.Msg{Type: r.Type, Wire: libsignaltest.Hex(t, r.Wire), Plaintext: pt}
		},
		Recv: func(m signallive.Msg) error {
			var ok bool
			return signallive.CheckReply(p.Call(map[string]any{"op": "decrypt", "as": "alice", "from": "go-bob", "type": m.Type, "wire": hex.EncodeToString(m.Wire)}), m.Plaintext, &ok)
		},
	}
	return s, goEnd, lsEnd
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
			s, goEnd, lsEnd := liveGoInitiator(t, p, &v.Sessions[1], nil)
			if err := lsEnd.Recv(goEnd.Send([]byte("hello"))); err != nil {
				t.Fatal(err)
			}
			if err := goEnd.Recv(lsEnd.Send([]byte("hi"))); err != nil {
				t.Fatal(err)
			}
			ms := held(t, s, skipped+1)
			last := signallive.Msg{Type: signalwire.TypeWhisper, Wire: ms[skipped], Plaintext: []byte(fmt.Sprint("m", skipped))}
			err := lsEnd.Recv(last)
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
				err := lsEnd.Recv(signallive.Msg{Type: signalwire.TypeWhisper, Wire: ms[i], Plaintext: []byte(fmt.Sprint("m", i))})
				if (err == nil) != ok {
					t.Errorf("skipped message %d back: %v", skipped-i, err)
				}
			}
		})
	}
}

// goStateOf is Conversation's view of a Go Session's state.
func goStateOf(t *testing.T, s *Session) func() ([]byte, bool) {
	return func() ([]byte, bool) {
		if s.sig == nil { // the responder before its first message
			return nil, false
		}
		return state(t, s), true
	}
}

// TestLiveSignalUpgrade: a session of minimal SPQR (as every Signal
// session was before full SPQR) talks with libsignal, which stays in SPQR
// epoch 1 with it; its state is then serialized and parsed, which moves
// it to full SPQR from its next message, and the same conversation goes
// on: the fresh braid meets libsignal's, which has been waiting at the
// start of epoch 1, and both reach epoch liveMinEpoch, in both roles.
func TestLiveSignalUpgrade(t *testing.T) {
	v := libsignaltest.Load(t)
	for _, initiator := range []bool{true, false} {
		t.Run(map[bool]string{true: "go initiator", false: "go responder"}[initiator], func(t *testing.T) {
			p := libsignaltest.Live(t, v.Sessions[0].Name)
			var s *Session
			var goEnd, lsEnd signallive.End
			if initiator {
				s, goEnd, lsEnd = liveGoInitiator(t, p, &v.Sessions[0], &Config{minimalSPQR: true})
			} else {
				s, goEnd, lsEnd = liveGoResponder(t, p, true, &Config{minimalSPQR: true})
			}
			rng := mrand.New(mrand.NewPCG(3, 7))
			before := &signallive.Epochs{MinEpoch: 2, Window: 10}
			stats := signallive.Conversation(t, rng, before.Track(t, 0, goEnd), before.Track(t, 1, lsEnd), 600, 8, goStateOf(t, s))
			if _, ok := s.sig.pq.(*spqr.Minimal); !ok || before.Sent != [2]uint64{1, 1} {
				t.Fatalf("before the upgrade: %v", before)
			}
			t.Logf("minimal SPQR: %v; %v", stats, before)
			if err := s.UnmarshalBinary(state(t, s)); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.sig.pq.(*upgradePQ); !ok {
				t.Fatal("not moving to full SPQR")
			}
			after := &signallive.Epochs{MinEpoch: liveMinEpoch, Window: 10}
			stats = signallive.Conversation(t, rng, after.Track(t, 0, goEnd), after.Track(t, 1, lsEnd), liveSteps, 8, goStateOf(t, s))
			if pqKind(s.sig.pq) != pqKindFull {
				t.Fatal("not upgraded")
			}
			t.Logf("upgraded: %v; %v", stats, after)
			after.Check(t, 10)
		})
	}
}

// TestLiveSignalSilence: after a paced conversation, one side goes silent
// while the other sends 300 messages (reordered by up to 5, one in 16
// lost); then the conversation resumes and both sides move two SPQR
// epochs past the highest reached before, each way, Go silent and
// libsignal silent.
func TestLiveSignalSilence(t *testing.T) {
	v := libsignaltest.Load(t)
	for _, silent := range []int{0, 1} {
		t.Run([]string{"go silent", "libsignal silent"}[silent], func(t *testing.T) {
			p := libsignaltest.Live(t, v.Sessions[1].Name)
			s, goEnd, lsEnd := liveGoInitiator(t, p, &v.Sessions[1], nil)
			ep := &signallive.Epochs{MinEpoch: 2, Window: 10}
			ends := [2]signallive.End{ep.Track(t, 0, goEnd), ep.Track(t, 1, lsEnd)}
			rng := mrand.New(mrand.NewPCG(uint64(silent), 5))
			signallive.Conversation(t, rng, ends[0], ends[1], 1000, 8, goStateOf(t, s))
			ep.Drop()
			reached := max(ep.Sent[0], ep.Sent[1])
			talker := 1 - silent
			var q []signallive.Msg
			lost := 0
			for i := range 300 {
				q = append(q, ends[talker].Send([]byte(fmt.Sprint("while the other is silent ", i))))
				if len(q) < 5 && i < 299 {
					continue
				}
				rng.Shuffle(len(q), func(a, b int) { q[a], q[b] = q[b], q[a] })
				for _, m := range q {
					if rng.IntN(16) == 0 {
						lost++
						continue
					}
					if err := ends[silent].Recv(m); err != nil {
						t.Fatalf("message %d of the silence: %v", i, err)
					}
				}
				q = q[:0]
			}
			t.Logf("before the silence: %v; %d of 300 lost", ep, lost)
			ep.MinEpoch, ep.Delivered = reached+2, [2]int{}
			ep.Drop()
			signallive.Conversation(t, rng, ends[0], ends[1], 2000, 8, goStateOf(t, s))
			t.Logf("after: %v", ep)
			ep.Check(t, 10)
		})
	}
}
