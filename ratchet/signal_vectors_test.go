package ratchet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// signalParty is one Go side of a replayed libsignal session: a ratchet
// Session whose fresh ratchet keys are the ones libsignal drew (taken from
// its session records), so that every root and chain key can be compared.
type signalParty struct {
	s    *Session
	next *keys.PrivateKey // the key the next DH ratchet step draws
}

func (p *signalParty) source() (*keys.PrivateKey, error) {
	if p.next == nil {
		return keys.GeneratePrivateKey()
	}
	k := p.next
	p.next = nil
	return k, nil
}

// unwrap returns the SignalMessage inside a PreKeySignalMessage.
func unwrap(t testing.TB, typ int, wire []byte) []byte {
	if typ != signalwire.TypePreKey {
		return wire
	}
	m, _, err := signalwire.ParsePreKeySignalMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	return m.Message
}

// signalPair starts both Go parties of a libsignal session from the
// responder's keys (PQXDH's output is the same on both sides).
func signalPair(t testing.TB, s *libsignaltest.Session, minimalSPQR bool) (alice, bob *signalParty, spk *keys.PrivateKey) {
	h := func(x string) []byte { return libsignaltest.Hex(t, x) }
	ik := must(keys.NewIdentityKeyPair(h(s.Bob.Identity.Private)))
	spk = must(keys.NewPrivateKey(h(s.Bob.SignedPreKey.Private)))
	signed := must(keys.NewSignedPreKey(s.Bob.SignedPreKey.ID, spk, h(s.Bob.SignedPreKey.Signature), time.Unix(0, 0)))
	var opk *keys.OneTimePreKey
	if s.Bob.OneTimePreKey != nil {
		opk = keys.NewOneTimePreKey(s.Bob.OneTimePreKey.ID, must(keys.NewPrivateKey(h(s.Bob.OneTimePreKey.Private))))
	}
	ksk := must(kyber.NewPrivateKey(h(s.Bob.KyberPreKey.Seed)))
	kpk := must(kyber.NewPreKey(s.Bob.KyberPreKey.ID, ksk, h(s.Bob.KyberPreKey.Signature), time.Unix(0, 0), false))
	m, _, err := signalwire.ParsePreKeySignalMessage(h(s.Messages[0].Wire))
	if err != nil {
		t.Fatal(err)
	}
	k := must(pqxdh.Respond(ik, signed, opk, kpk, &pqxdh.Header{
		IdentityKey: m.IdentityKey, BaseKey: m.BaseKey, SignedPreKeyID: m.SignedPreKeyID,
		HasOneTimePreKey: m.HasPreKeyID, OneTimePreKeyID: m.PreKeyID,
		KyberPreKeyID: m.KyberPreKeyID, KyberCiphertext: m.KyberCiphertext,
	}))
	alice, bob = new(signalParty), new(signalParty)
	acfg, bcfg := &Config{keySource: alice.source, minimalSPQR: minimalSPQR}, &Config{keySource: bob.source, minimalSPQR: minimalSPQR}
	alice.next = must(keys.NewPrivateKey(h(s.AliceAfterBundle.SenderChain.RatchetPrivate)))
	alice.s = must(NewSignalInitiator(k, m.IdentityKey, ik.PublicKey(), spk.PublicKey(), acfg))
	bob.s = must(NewSignalResponder(k, ik.PublicKey(), m.IdentityKey, spk, bcfg))
	return alice, bob, spk
}

// checkState compares a Go session with libsignal's view of the same
// party: root key, sending chain (ratchet key, index, chain key) and every
// receiving chain, oldest first.
func checkSignalState(t testing.TB, what string, s *Session, want *libsignaltest.State) {
	t.Helper()
	h := func(x string) []byte { return libsignaltest.Hex(t, x) }
	if !bytes.Equal(s.rk[:], h(want.RootKey)) {
		t.Fatalf("%s: root key %x, libsignal has %s", what, s.rk, want.RootKey)
	}
	sc := want.SenderChain
	if !bytes.Equal(append([]byte{5}, s.dhsPub[:]...), h(sc.RatchetKey)) || s.ns != sc.ChainIndex || !bytes.Equal(s.cks[:], h(sc.ChainKey)) {
		t.Fatalf("%s: sending chain (%x, %d) differs from libsignal's (%s, %d)", what, s.dhsPub, s.ns, sc.RatchetKey, sc.ChainIndex)
	}
	if s.sig.nchains != len(want.ReceiverChains) {
		t.Fatalf("%s: %d receiving chains, libsignal has %d", what, s.sig.nchains, len(want.ReceiverChains))
	}
	for i, c := range want.ReceiverChains {
		got := &s.sig.chains[i]
		if !bytes.Equal(append([]byte{5}, got.pub[:]...), h(c.RatchetKey)) || got.next != c.ChainIndex || !bytes.Equal(got.ck[:], h(c.ChainKey)) {
			t.Fatalf("%s: receiving chain %d (%x, %d) differs from libsignal's (%s, %d)", what, i, got.pub, got.next, c.RatchetKey, c.ChainIndex)
		}
	}
}

func clone(t testing.TB, s *Session) *Session {
	t.Helper()
	return must(ParseSession(must(s.MarshalBinary())))
}

// TestSignalLibsignalTranscripts replays every libsignal transcript with a
// Go party in each role, once with full SPQR and once with minimal SPQR.
// Each libsignal message decrypts in the Go receiver, whose root key and
// chains then equal libsignal's receiver's; the Go sender encrypts the
// same plaintext at the same point and its message carries the same
// ratchet key, counters and ciphertext as libsignal's (the transcripts
// stay in SPQR's first epoch, so the SPQR keys are the same; only the SPQR
// payload differs: each braid has its own ML-KEM keys), and its state
// equals libsignal's sender's. With minimal SPQR a copy of the receiver
// also decrypts Go's message; with full SPQR it cannot in general, since
// the receiver's braid follows libsignal's sender, not Go's.
func TestSignalLibsignalTranscripts(t *testing.T) {
	for _, minimal := range []bool{false, true} {
		t.Run(map[bool]string{false: "full SPQR", true: "minimal SPQR"}[minimal], func(t *testing.T) {
			testSignalLibsignalTranscripts(t, minimal)
		})
	}
}

func testSignalLibsignalTranscripts(t *testing.T, minimal bool) {
	v := libsignaltest.Load(t)
	total := 0
	for i := range v.Sessions {
		ls := &v.Sessions[i]
		t.Run(ls.Name, func(t *testing.T) {
			alice, bob, _ := signalPair(t, ls, minimal)
			checkSignalState(t, "alice after the bundle", alice.s, ls.AliceAfterBundle)
			parties := map[string]*signalParty{"alice": alice, "bob": bob}
			peer := map[string]string{"alice": "bob", "bob": "alice"}
			encrypted := map[int][]byte{}
			nextSeq := 0
			// Go's senders encrypt in libsignal's order (seq), each message
			// before its first delivery.
			encryptUpTo := func(seq int) {
				for ; nextSeq <= seq; nextSeq++ {
					var m *libsignaltest.Message
					for j := range ls.Messages {
						if ls.Messages[j].Seq == nextSeq {
							m = &ls.Messages[j]
						}
					}
					snd := parties[m.From]
					wire, err := snd.s.Encrypt(libsignaltest.Hex(t, m.Plaintext))
					if err != nil {
						t.Fatal(err)
					}
					encrypted[m.Seq] = wire
					checkSignalState(t, m.From+" after encrypting", snd.s, m.SenderAfter)
					got, _, _ := must3(signalwire.ParseSignalMessage(wire))
					want, _, _ := must3(signalwire.ParseSignalMessage(unwrap(t, m.Type, libsignaltest.Hex(t, m.Wire))))
					if !got.RatchetKey.Equal(want.RatchetKey) || got.Counter != want.Counter ||
						got.PreviousCounter != want.PreviousCounter || !bytes.Equal(got.Ciphertext, want.Ciphertext) {
						t.Fatalf("%d: Go's message (counter %d, previous %d) differs from libsignal's (%d, %d)",
							m.Seq, got.Counter, got.PreviousCounter, want.Counter, want.PreviousCounter)
					}
				}
			}
			for _, m := range ls.Messages {
				encryptUpTo(m.Seq)
				rcv := parties[peer[m.From]]
				pt := libsignaltest.Hex(t, m.Plaintext)
				// Go's own message decrypts in a copy of the receiver.
				if got, err := clone(t, rcv.s).Decrypt(encrypted[m.Seq]); minimal && (err != nil || !bytes.Equal(got, pt)) {
					t.Fatalf("%d: Go's message from %s: %v", m.Seq, m.From, err)
				}
				if sc := m.ReceiverAfter.SenderChain; sc != nil && sc.RatchetPrivate != "" {
					rcv.next = must(keys.NewPrivateKey(libsignaltest.Hex(t, sc.RatchetPrivate)))
				}
				got, err := rcv.s.Decrypt(unwrap(t, m.Type, libsignaltest.Hex(t, m.Wire)))
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%d: libsignal's message from %s: %v", m.Seq, m.From, err)
				}
				rcv.next = nil
				checkSignalState(t, peer[m.From]+" after decrypting", rcv.s, m.ReceiverAfter)
				total++
			}
			if i == 0 {
				signalNegatives(t, v, bob.s)
			}
		})
	}
	if total < 120 {
		t.Fatalf("only %d messages replayed", total)
	}
	t.Logf("replayed %d libsignal messages in both roles", total)
}

func must3[A, B, C any](a A, b B, c C, err error) (A, B, C) {
	if err != nil {
		panic(err)
	}
	return a, b, c
}

// signalNegatives runs libsignal's tampered messages against the Go
// responder at the end of the first transcript: each is refused with the
// state byte for byte unchanged, and its untouched original then decrypts;
// the replayed message is ErrDuplicate.
func signalNegatives(t *testing.T, v *libsignaltest.Vectors, bob *Session) {
	n := 0
	for _, c := range v.MessageNegatives {
		before := must(bob.MarshalBinary())
		_, err := bob.Decrypt(libsignaltest.Hex(t, c.Wire))
		if err == nil {
			t.Fatalf("negative %s decrypts", c.Name)
		}
		if !bytes.Equal(before, must(bob.MarshalBinary())) {
			t.Fatalf("negative %s changed the state", c.Name)
		}
		if c.Original == "" {
			if !errors.Is(err, ErrDuplicate) {
				t.Fatalf("%s: %v, want ErrDuplicate", c.Name, err)
			}
			n++
			continue
		}
		pt, err := bob.Decrypt(libsignaltest.Hex(t, c.Original))
		if err != nil || hex.EncodeToString(pt) != c.Plaintext {
			t.Fatalf("original of %s: %v", c.Name, err)
		}
		// And the original, once used, is a duplicate.
		if _, err := bob.Decrypt(libsignaltest.Hex(t, c.Original)); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("original of %s replayed: %v", c.Name, err)
		}
		n++
	}
	if n < 11 {
		t.Fatalf("only %d negatives", n)
	}
	t.Logf("%d negative messages refused with the state unchanged", n)
}
