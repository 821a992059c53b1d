package senderkey

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
)

// The Sender Key vectors libsignal made (testdata/libsignal/gen_senderkey.mjs).
type skVectors struct {
	LibsignalClient string    `json:"libsignal_client"`
	Groups          []skGroup `json:"groups"`
	Distribution    []struct {
		Name      string   `json:"name"`
		Wire      string   `json:"wire"`
		OK        bool     `json:"ok"`
		Error     *skError `json:"error"`
		Reencoded string   `json:"reencoded"`
		ChainID   uint32   `json:"chain_id"`
		Iteration uint32   `json:"iteration"`
	} `json:"distribution_negatives"`
}

type skGroup struct {
	Name           string `json:"name"`
	DistributionID string `json:"distribution_id"`
	SKDMs          []struct {
		Wire           string `json:"wire"`
		ChainID        uint32 `json:"chain_id"`
		Iteration      uint32 `json:"iteration"`
		ChainKey       string `json:"chain_key"`
		SigningPublic  string `json:"signing_public"`
		SigningPrivate string `json:"signing_private"`
	} `json:"skdms"`
	Messages []struct {
		ChainID   uint32 `json:"chain_id"`
		Iteration uint32 `json:"iteration"`
		Plaintext string `json:"plaintext"`
		Wire      string `json:"wire"`
		Type      int    `json:"type"`
	} `json:"messages"`
	Receivers []struct {
		Name  string   `json:"name"`
		Steps []skStep `json:"steps"`
	} `json:"receivers"`
}

type skStep struct {
	Process        *int     `json:"process"`
	Decrypt        *int     `json:"decrypt"`
	Name           string   `json:"name"`
	Wire           string   `json:"wire"`
	OK             bool     `json:"ok"`
	Plaintext      string   `json:"plaintext"`
	Error          *skError `json:"error"`
	StateUnchanged *bool    `json:"state_unchanged"`
}

type skError struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
}

func loadVectors(t testing.TB) *skVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "libsignal", "senderkey.json"))
	if err != nil {
		t.Fatal(err)
	}
	v := new(skVectors)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stricter lists the messages libsignal refuses for its signature (its
// parser ignores the version byte's low nibble) and this package refuses
// as malformed, and the distribution messages libsignal accepts and this
// package refuses as non-canonical.
var stricter = map[string]bool{
	"version_0x34": true, "version_0x32": true,
	"unknown_field": true, "repeated_chain_id": true,
}

// wantErr maps libsignal's verdict to this package's error.
func wantErr(t testing.TB, name string, e *skError) error {
	t.Helper()
	if stricter[strings.TrimSuffix(name, " again")] {
		return ErrMalformed
	}
	m := e.Message
	switch {
	case strings.Contains(m, "message with old counter"):
		return ErrDuplicate
	case strings.Contains(m, "missing sender key state"):
		return ErrNoState
	case strings.Contains(m, "invalid signature"):
		return ErrInvalidSignature
	case strings.Contains(m, "too far into the future"):
		return ErrTooFarInFuture
	case strings.Contains(m, "decryption failed"):
		return ErrDecrypt
	case strings.Contains(m, "too short"), strings.Contains(m, "protobuf encoding"), strings.Contains(m, "version was"):
		return ErrMalformed
	}
	t.Fatalf("unmapped libsignal error %q", m)
	return nil
}

// member is a Go receiver: one record per distribution id of one sender.
type member map[DistributionID]*Record

func (m member) decrypt(b []byte) ([]byte, error) {
	h, err := ParseMessage(b)
	if err != nil {
		return nil, err
	}
	r := m[h.DistributionID]
	if r == nil {
		return nil, ErrNoState
	}
	return r.Decrypt(b)
}

func (m member) bytes() []byte {
	var out []byte
	for id, r := range m {
		out = append(append(out, id[:]...), r.Bytes()...)
	}
	return out
}

// TestVectorsReceive replays every receiver libsignal ran, step by step,
// and expects libsignal's verdict on each: the same plaintext, or the
// matching error with the record byte-identical afterwards.
func TestVectorsReceive(t *testing.T) {
	v := loadVectors(t)
	if v.LibsignalClient != "0.103.0" {
		t.Fatalf("vectors from libsignal %s", v.LibsignalClient)
	}
	var decrypted, refused int
	for _, g := range v.Groups {
		for _, rc := range g.Receivers {
			t.Run(g.Name+"/"+rc.Name, func(t *testing.T) {
				m := member{}
				for i, st := range rc.Steps {
					if st.Process != nil {
						dm, err := ParseDistributionMessage(unhex(t, g.SKDMs[*st.Process].Wire))
						if err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
						if m[dm.DistributionID] == nil {
							m[dm.DistributionID] = new(Record)
						}
						m[dm.DistributionID].Process(dm)
						continue
					}
					wire, name := st.Wire, st.Name
					if st.Decrypt != nil {
						wire, name = g.Messages[*st.Decrypt].Wire, "message"
					}
					before := m.bytes()
					pt, err := m.decrypt(unhex(t, wire))
					if st.OK {
						if err != nil || !bytes.Equal(pt, unhex(t, st.Plaintext)) {
							t.Fatalf("step %d (%s): libsignal decrypted, Go: %v", i, name, err)
						}
						decrypted++
						continue
					}
					if want := wantErr(t, name, st.Error); !errors.Is(err, want) {
						t.Fatalf("step %d (%s): libsignal said %q, Go %v, want %v", i, name, st.Error.Message, err, want)
					}
					if pt != nil || !bytes.Equal(before, m.bytes()) {
						t.Fatalf("step %d (%s): a failed decrypt changed the record", i, name)
					}
					if st.StateUnchanged == nil || !*st.StateUnchanged {
						t.Fatalf("step %d (%s): libsignal's record changed", i, name)
					}
					refused++
				}
			})
		}
	}
	if decrypted < 100 || refused < 50 {
		t.Fatalf("only %d decrypted and %d refused", decrypted, refused)
	}
	t.Logf("%d libsignal group messages decrypted, %d refused as libsignal refused them", decrypted, refused)
}

// TestVectorsSend re-encrypts every libsignal group message from the
// sender's key material read from libsignal's record: the Go message must
// equal libsignal's up to the randomized signature, and its signature must
// verify under the chain's signing key.
func TestVectorsSend(t *testing.T) {
	v := loadVectors(t)
	n := 0
	for _, g := range v.Groups {
		var id DistributionID
		copy(id[:], unhex(t, g.DistributionID))
		for i, msg := range g.Messages {
			var base int = -1
			for k, d := range g.SKDMs {
				if d.ChainID == msg.ChainID && d.Iteration <= msg.Iteration && (base < 0 || d.Iteration < g.SKDMs[base].Iteration) {
					base = k
				}
			}
			if base < 0 {
				t.Fatalf("%s message %d: no distribution message", g.Name, i)
			}
			d := g.SKDMs[base]
			signer, err := keys.NewIdentityKeyPair(unhex(t, d.SigningPrivate))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(signer.PublicKey().Encode(), unhex(t, d.SigningPublic)) {
				t.Fatalf("%s: libsignal's signing private key does not give its public key", g.Name)
			}
			s := &state{chainID: d.ChainID, iteration: d.Iteration, signPub: signer.PublicKey(), signPriv: signer}
			copy(s.chainKey[:], unhex(t, d.ChainKey))
			for s.iteration < msg.Iteration {
				_, s.chainKey = chainStep(&s.chainKey)
				s.iteration++
			}
			r := &Record{states: []*state{s}}
			out, err := r.Encrypt(id, unhex(t, msg.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, msg.Wire)
			if len(out) != len(want) || !bytes.Equal(out[:len(out)-64], want[:len(want)-64]) {
				t.Fatalf("%s message %d: Go's message differs from libsignal's", g.Name, i)
			}
			if !signer.PublicKey().Verify(out[:len(out)-64], out[len(out)-64:]) {
				t.Fatalf("%s message %d: Go's signature does not verify", g.Name, i)
			}
			if msg.Type != 7 {
				t.Fatalf("libsignal's message type %d", msg.Type)
			}
			n++
		}
	}
	t.Logf("%d messages re-encrypted byte for byte", n)
}

// TestVectorsDistribution parses every distribution message libsignal made
// or judged, re-encodes the accepted ones byte for byte, and refuses what
// libsignal refuses (and the non-canonical forms listed in stricter).
func TestVectorsDistribution(t *testing.T) {
	v := loadVectors(t)
	for _, g := range v.Groups {
		for _, d := range g.SKDMs {
			b := unhex(t, d.Wire)
			m, err := ParseDistributionMessage(b)
			if err != nil {
				t.Fatalf("%s: %v", g.Name, err)
			}
			if !bytes.Equal(m.Bytes(), b) || m.ChainID != d.ChainID || m.Iteration != d.Iteration ||
				hex.EncodeToString(m.ChainKey[:]) != d.ChainKey || hex.EncodeToString(m.SigningKey.Encode()) != d.SigningPublic ||
				hex.EncodeToString(m.DistributionID[:]) != g.DistributionID {
				t.Fatalf("%s: distribution message read or re-encoded wrongly", g.Name)
			}
			if m.ChainID>>31 != 0 {
				t.Fatalf("libsignal made a 32-bit chain id")
			}
		}
	}
	for _, d := range v.Distribution {
		m, err := ParseDistributionMessage(unhex(t, d.Wire))
		switch {
		case stricter[d.Name]:
			if !d.OK || !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: libsignal ok=%v, Go %v; want Go to refuse a form libsignal accepts", d.Name, d.OK, err)
			}
		case d.OK:
			if err != nil || !bytes.Equal(m.Bytes(), unhex(t, d.Wire)) || d.Reencoded != d.Wire ||
				m.ChainID != d.ChainID || m.Iteration != d.Iteration {
				t.Errorf("%s: libsignal accepted, Go: %v", d.Name, err)
			}
		default:
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: libsignal refused (%s), Go: %v", d.Name, d.Error.Message, err)
			}
		}
	}
}
