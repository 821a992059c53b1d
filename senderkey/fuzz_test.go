package senderkey

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
)

// FuzzParseDistributionMessage: no panic, and whatever parses re-encodes to
// the same bytes.
func FuzzParseDistributionMessage(f *testing.F) {
	v := loadVectors(f)
	for _, g := range v.Groups {
		for _, d := range g.SKDMs {
			f.Add(unhex(f, d.Wire))
		}
	}
	for _, d := range v.Distribution {
		f.Add(unhex(f, d.Wire))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseDistributionMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || m != nil {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("does not re-encode")
		}
	})
}

// fuzzRecord is a member holding the "main" chain of the vectors with three
// messages received, so that Decrypt sees stored keys and a future, and
// the chain's messages.
func fuzzRecord(t testing.TB) (*Record, [][]byte) {
	v := loadVectors(t)
	var g skGroup
	for _, x := range v.Groups {
		if x.Name == "main" {
			g = x
		}
	}
	dm, err := ParseDistributionMessage(unhex(t, g.SKDMs[0].Wire))
	if err != nil {
		t.Fatal(err)
	}
	r := new(Record)
	r.Process(dm)
	var msgs [][]byte
	for _, m := range g.Messages {
		msgs = append(msgs, unhex(t, m.Wire))
	}
	for _, i := range []int{5, 2, 20} {
		if _, err := r.Decrypt(msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return r, msgs
}

// FuzzDecrypt: hostile group messages to a member with stored keys never
// panic, and a failed decrypt leaves the record byte-identical. Seeds are
// libsignal's messages and their tampered and forged variants.
func FuzzDecrypt(f *testing.F) {
	_, msgs := fuzzRecord(f)
	for _, m := range msgs[:30] {
		f.Add(m)
	}
	v := loadVectors(f)
	for _, g := range v.Groups {
		if g.Name != "negatives" {
			continue
		}
		for _, rc := range g.Receivers {
			for _, st := range rc.Steps {
				if st.Wire != "" {
					f.Add(unhex(f, st.Wire))
				}
			}
		}
	}
	base, _ := fuzzRecord(f)
	before := base.Bytes()
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(before)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := r.Decrypt(b)
		if err != nil {
			if pt != nil || !bytes.Equal(r.Bytes(), before) {
				t.Fatal("a failed decrypt changed the record")
			}
			if _, perr := ParseMessage(b); perr != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unparsable message refused with %v", err)
			}
			return
		}
		if bytes.Equal(r.Bytes(), before) {
			t.Fatal("a successful decrypt changed nothing")
		}
	})
}

// FuzzParseRecord: no panic; a record that parses re-encodes to the same
// bytes and survives a decrypt attempt and an encrypt attempt.
func FuzzParseRecord(f *testing.F) {
	r, msgs := fuzzRecord(f)
	f.Add(r.Bytes())
	f.Add(new(Record).Bytes())
	id, sender, recv := pair(f)
	send(f, sender, id, 3)
	f.Add(sender.Bytes())
	f.Add(recv.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatal("does not re-encode")
		}
		r.Decrypt(msgs[40])
		r.Encrypt(id, []byte("x"))
		if _, err := ParseRecord(r.Bytes()); err != nil {
			t.Fatalf("a parsed record became unparsable: %v", err)
		}
	})
}

// FuzzParseMessage: no panic; the header parses exactly when the message's
// form is canonical, and a canonical message re-encodes.
func FuzzParseMessage(f *testing.F) {
	_, msgs := fuzzRecord(f)
	for _, m := range msgs[:10] {
		f.Add(m)
	}
	k, _ := keys.GenerateIdentityKeyPair()
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseMessage(b)
		if err != nil {
			return
		}
		// Re-sign the body under a fresh key: a chain with that key must
		// accept the same bytes up to the iteration rules.
		body := b[:len(b)-64]
		r := &Record{states: []*state{{chainID: h.ChainID, iteration: h.Iteration, signPub: k.PublicKey()}}}
		resigned := append(bytes.Clone(body), k.Sign(body)...)
		if _, err := r.Decrypt(resigned); errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrNoState) {
			t.Fatalf("a parsed message was refused as %v", err)
		}
	})
}
