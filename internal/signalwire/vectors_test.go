package signalwire

import (
	"bytes"
	"slices"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
)

// TestLibsignalTranscripts parses every message of every libsignal
// transcript and re-encodes it byte for byte, and checks what the facts
// sheet says about their shape.
func TestLibsignalTranscripts(t *testing.T) {
	v := libsignaltest.Load(t)
	var whisper, prekey, withAddresses int
	for _, s := range v.Sessions {
		for _, msg := range s.Messages {
			wire := libsignaltest.Hex(t, msg.Wire)
			if wire[0] != 0x44 {
				t.Fatalf("%s/%d: version byte %#x", s.Name, msg.Seq, wire[0])
			}
			var sm *SignalMessage
			var inner []byte
			switch msg.Type {
			case TypePreKey:
				prekey++
				m, in, err := ParsePreKeySignalMessage(wire)
				if err != nil {
					t.Fatalf("%s/%d: %v", s.Name, msg.Seq, err)
				}
				again, err := m.Append(nil)
				if err != nil || !bytes.Equal(again, wire) {
					t.Fatalf("%s/%d: PreKeySignalMessage re-encodes differently (%v)", s.Name, msg.Seq, err)
				}
				if m.HasPreKeyID != (s.Bundle.PreKeyID != nil) || (m.HasPreKeyID && m.PreKeyID != *s.Bundle.PreKeyID) ||
					m.SignedPreKeyID != s.Bundle.SignedPreKeyID || m.KyberPreKeyID != s.Bundle.KyberPreKeyID ||
					m.RegistrationID != s.Alice.Identity.RegistrationID {
					t.Errorf("%s/%d: ids %+v do not match the bundle", s.Name, msg.Seq, m)
				}
				if got := m.IdentityKey.Encode(); !bytes.Equal(got, libsignaltest.Hex(t, s.Alice.Identity.Public)) {
					t.Errorf("%s/%d: identity key is not Alice's", s.Name, msg.Seq)
				}
				sm, inner = in, m.Message
			case TypeWhisper:
				whisper++
				sm, inner = nil, wire
				var err error
				if sm, _, _, err = ParseSignalMessage(wire); err != nil {
					t.Fatalf("%s/%d: %v", s.Name, msg.Seq, err)
				}
			default:
				t.Fatalf("%s/%d: type %d", s.Name, msg.Seq, msg.Type)
			}
			body, err := sm.AppendBody(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(body, inner[len(inner)-MACSize:]...), inner) {
				t.Fatalf("%s/%d: SignalMessage re-encodes differently", s.Name, msg.Seq)
			}
			// Every message carries an SPQR payload, version 1.
			if len(sm.PQRatchet) == 0 || sm.PQRatchet[0] != 0x01 {
				t.Errorf("%s/%d: SPQR payload %x", s.Name, msg.Seq, sm.PQRatchet)
			}
			// The AES-256-CBC ciphertext is the PKCS#7-padded plaintext.
			if pt := len(msg.Plaintext) / 2; len(sm.Ciphertext) != (pt/16+1)*16 {
				t.Errorf("%s/%d: %d-byte plaintext, %d-byte ciphertext", s.Name, msg.Seq, pt, len(sm.Ciphertext))
			}
			if sm.Addresses != nil {
				withAddresses++
			}
		}
	}
	if whisper < 100 || prekey < 3 || withAddresses < 1 {
		t.Fatalf("only %d SignalMessages, %d PreKeySignalMessages, %d with addresses", whisper, prekey, withAddresses)
	}
	t.Logf("%d SignalMessages and %d PreKeySignalMessages re-encoded byte for byte (%d with addresses)", whisper, prekey, withAddresses)
}

// TestLibsignalNegatives: every tampered message that libsignal refused
// already while deserializing is refused by the parser too. The others
// (flipped MAC or ciphertext bytes) parse, and fail later at the MAC.
func TestLibsignalNegatives(t *testing.T) {
	v := libsignaltest.Load(t)
	n := 0
	for _, c := range v.MessageNegatives {
		if c.Error == nil {
			t.Fatalf("%s: libsignal accepted it", c.Name)
		}
		_, _, _, err := ParseSignalMessage(libsignaltest.Hex(t, c.Wire))
		if c.Error.Stage == "deserialize" {
			n++
			if err == nil {
				t.Errorf("%s: libsignal refused it (%s), the parser accepts it", c.Name, c.Error.Message)
			}
		}
		if c.Name == "version_0x34" || c.Name == "version_0x43" {
			// libsignal parses these and refuses them when decrypting;
			// here they never parse.
			if err == nil {
				t.Errorf("%s: accepted", c.Name)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d deserialize-stage negatives", n)
	}
}

// TestLibsignalPreviousCounter pins what libsignal writes in field 3: for a
// sender's previous chain of n messages, max(n − 1, 0), on every message of
// the new chain.
func TestLibsignalPreviousCounter(t *testing.T) {
	v := libsignaltest.Load(t)
	checked := 0
	for _, s := range v.Sessions {
		msgs := slices.Clone(s.Messages)
		slices.SortFunc(msgs, func(a, b libsignaltest.Message) int { return a.Seq - b.Seq })
		type chain struct {
			key string
			n   uint32
		}
		cur := map[string]*chain{}  // sender -> current chain
		prev := map[string]uint32{} // sender -> messages on the previous chain
		for _, msg := range msgs {
			wire := libsignaltest.Hex(t, msg.Wire)
			if msg.Type == TypePreKey {
				m, _, err := ParsePreKeySignalMessage(wire)
				if err != nil {
					t.Fatal(err)
				}
				wire = m.Message
			}
			m, _, _, err := ParseSignalMessage(wire)
			if err != nil {
				t.Fatal(err)
			}
			key := string(m.RatchetKey.Encode())
			c := cur[msg.From]
			if c == nil || c.key != key {
				if c != nil {
					prev[msg.From] = c.n
				}
				c = &chain{key: key}
				cur[msg.From] = c
			}
			c.n++
			if want := max(prev[msg.From], 1) - 1; m.PreviousCounter != want {
				t.Errorf("%s/%d: previous_counter %d, want %d", s.Name, msg.Seq, m.PreviousCounter, want)
			}
			checked++
		}
	}
	if checked < 120 {
		t.Fatalf("only %d messages", checked)
	}
}
