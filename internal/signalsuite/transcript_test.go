package signalsuite

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// replay decrypts libsignal transcripts with nothing but the responder's
// keys: PQXDH, the root and chain KDFs, the SPQR first-epoch chains and the
// message keys, all from this module. The responder's fresh ratchet private
// keys come from libsignal's session records (they are the only secrets
// libsignal drew during the transcript that the replay needs).
type replay struct {
	t        *testing.T
	s        *libsignaltest.Session
	alice    *keys.PublicKey
	bob      *keys.PublicKey
	root     [KeySize]byte
	current  *keys.PrivateKey         // Bob's current ratchet key
	chains   map[string][KeySize]byte // ratchet key (hex) -> chain key at index 0
	epoch    *spqr.Epoch
	seenKeys map[string]bool
}

// must is for loading the committed vectors, which are known good: a failure
// there is a broken file, reported by the panic.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newReplay(t *testing.T, s *libsignaltest.Session) *replay {
	h := libsignaltest.Hex
	ik := must(keys.NewIdentityKeyPair(h(t, s.Bob.Identity.Private)))
	spkPriv := must(keys.NewPrivateKey(h(t, s.Bob.SignedPreKey.Private)))
	spk := must(keys.NewSignedPreKey(s.Bob.SignedPreKey.ID, spkPriv, h(t, s.Bob.SignedPreKey.Signature), time.Unix(0, 0)))
	var opk *keys.OneTimePreKey
	if s.Bob.OneTimePreKey != nil {
		opk = keys.NewOneTimePreKey(s.Bob.OneTimePreKey.ID, must(keys.NewPrivateKey(h(t, s.Bob.OneTimePreKey.Private))))
	}
	ksk := must(kyber.NewPrivateKey(h(t, s.Bob.KyberPreKey.Seed)))
	kpk := must(kyber.NewPreKey(s.Bob.KyberPreKey.ID, ksk, h(t, s.Bob.KyberPreKey.Signature), time.Unix(0, 0), false))

	m, _, err := signalwire.ParsePreKeySignalMessage(h(t, s.Messages[0].Wire))
	if err != nil {
		t.Fatal(err)
	}
	hdr := &pqxdh.Header{
		IdentityKey: m.IdentityKey, BaseKey: m.BaseKey, SignedPreKeyID: m.SignedPreKeyID,
		HasOneTimePreKey: m.HasPreKeyID, OneTimePreKeyID: m.PreKeyID,
		KyberPreKeyID: m.KyberPreKeyID, KyberCiphertext: m.KyberCiphertext,
	}
	k := must(pqxdh.Respond(ik, spk, opk, kpk, hdr))
	r := &replay{
		t: t, s: s, alice: m.IdentityKey, bob: ik.PublicKey(), root: k.RootKey, current: spkPriv,
		chains: map[string][KeySize]byte{}, epoch: spqr.Start(&k.PQRKey), seenKeys: map[string]bool{},
	}
	// Bob's first sending chain, on SPK_B, is PQXDH's chain key; libsignal
	// replaces it before Bob sends anything.
	r.chains[hex.EncodeToString(spkPriv.PublicKey().Encode())] = k.ChainKey
	return r
}

// open decrypts one wire message from the given sender.
func (r *replay) open(from string, typ int, wire []byte, bobNext string) ([]byte, error) {
	t := r.t
	if typ == signalwire.TypePreKey {
		pk, _, err := signalwire.ParsePreKeySignalMessage(wire)
		if err != nil {
			return nil, err
		}
		wire = pk.Message
	}
	m, body, mac, err := signalwire.ParseSignalMessage(wire)
	if err != nil {
		return nil, err
	}
	key := hex.EncodeToString(m.RatchetKey.Encode())
	if from == "alice" && !r.seenKeys[key] {
		// A new ratchet key from Alice: Bob's receiving step, then his
		// sending step with the fresh key libsignal drew.
		r.seenKeys[key] = true
		dh := must(r.current.ECDH(m.RatchetKey))
		var ck [KeySize]byte
		r.root, ck = RootStep(&r.root, dh)
		r.chains[key] = ck
		next := must(keys.NewPrivateKey(libsignaltest.Hex(t, bobNext)))
		dh = must(next.ECDH(m.RatchetKey))
		r.root, ck = RootStep(&r.root, dh)
		r.chains[hex.EncodeToString(next.PublicKey().Encode())] = ck
		r.current = next
	}
	ck, ok := r.chains[key]
	if !ok {
		t.Fatalf("no chain for ratchet key %s", key)
	}
	var seed [KeySize]byte
	for range m.Counter + 1 {
		seed, ck = ChainStep(&ck)
	}
	pq, err := spqr.Parse(m.PQRatchet)
	if err != nil {
		t.Fatalf("SPQR payload %x: %v", m.PQRatchet, err)
	}
	if pq.Epoch != 1 {
		t.Fatalf("SPQR epoch %d: the braid advanced, which this replay cannot follow", pq.Epoch)
	}
	dir, sender, receiver := spqr.AToB, r.alice, r.bob
	if from == "bob" {
		dir, sender, receiver = spqr.BToA, r.bob, r.alice
	}
	c := r.epoch.Chain(dir)
	salt := must(c.KeyAt(pq.Index))
	mk := DeriveMessageKeys(&seed, salt[:])
	defer mk.Clear()
	return Open(mk, sender, receiver, body, mac, m.Ciphertext)
}

// TestLibsignalTranscripts decrypts every message of every libsignal
// transcript, in both directions, and then the tampered messages of the
// negative cases (each must fail) and their originals (each must decrypt).
func TestLibsignalTranscripts(t *testing.T) {
	v := libsignaltest.Load(t)
	total := 0
	for i := range v.Sessions {
		s := &v.Sessions[i]
		r := newReplay(t, s)
		for _, m := range s.Messages {
			next := ""
			if m.From == "alice" && m.ReceiverAfter != nil && m.ReceiverAfter.SenderChain != nil {
				next = m.ReceiverAfter.SenderChain.RatchetPrivate
			}
			pt, err := r.open(m.From, m.Type, libsignaltest.Hex(t, m.Wire), next)
			if err != nil {
				t.Fatalf("%s/%d from %s: %v", s.Name, m.Seq, m.From, err)
			}
			if !bytes.Equal(pt, libsignaltest.Hex(t, m.Plaintext)) {
				t.Fatalf("%s/%d: wrong plaintext", s.Name, m.Seq)
			}
			// The replay's root key is the responder's in libsignal's
			// session record after every message.
			bobState := m.ReceiverAfter
			if m.From == "bob" {
				bobState = m.SenderAfter
			}
			if want := libsignaltest.Hex(t, bobState.RootKey); !bytes.Equal(r.root[:], want) {
				t.Fatalf("%s/%d: root key %x, libsignal's responder has %x", s.Name, m.Seq, r.root, want)
			}
			total++
		}
		if i == 0 {
			neg := 0
			for _, c := range v.MessageNegatives {
				if c.Original == "" {
					continue
				}
				if _, err := r.open("alice", 2, libsignaltest.Hex(t, c.Wire), ""); err == nil {
					t.Errorf("negative %s decrypts", c.Name)
				}
				pt, err := r.open("alice", 2, libsignaltest.Hex(t, c.Original), "")
				if err != nil || !bytes.Equal(pt, libsignaltest.Hex(t, c.Plaintext)) {
					t.Errorf("original of %s: %v", c.Name, err)
				}
				neg++
			}
			if neg < 10 {
				t.Fatalf("only %d negatives", neg)
			}
		}
	}
	if total < 120 {
		t.Fatalf("only %d messages", total)
	}
	t.Logf("decrypted %d libsignal messages", total)
}
