package x3dh_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// The seed corpora under testdata/fuzz are written from the vectors by
// TestWriteFuzzCorpus with -update; f.Add adds the same seeds in code.

func loadVectors(tb testing.TB) *vectorFile {
	tb.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		tb.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(data, &f); err != nil {
		tb.Fatal(err)
	}
	return &f
}

// seeds returns the byte strings of the vectors for op ("bundle" or
// "header"): every valid encoding and every invalid one.
func seeds(f *vectorFile, op string) [][]byte {
	var out [][]byte
	for _, c := range f.Valid {
		if op == "bundle" {
			out = append(out, c.Bundle)
		} else {
			out = append(out, c.Header)
		}
	}
	for _, c := range f.Invalid {
		if c.Op == "parse_"+op {
			out = append(out, *c.Bytes)
		}
	}
	return out
}

func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("writes testdata/fuzz with -update")
	}
	f := loadVectors(t)
	for target, op := range map[string]string{"FuzzParseBundle": "bundle", "FuzzInitiate": "bundle", "FuzzParseHeader": "header"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds(f, op) {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzParseBundle checks that ParseBundle never panics, that every error
// wraps ErrMalformed, and that whatever parses re-encodes to the same bytes.
func FuzzParseBundle(f *testing.F) {
	for _, s := range seeds(loadVectors(f), "bundle") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := x3dh.ParseBundle(in)
		if err != nil {
			if b != nil || !errors.Is(err, x3dh.ErrMalformed) {
				t.Fatalf("ParseBundle = %v, %v", b, err)
			}
			return
		}
		out, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded\n%x\nas\n%x", in, out)
		}
	})
}

// FuzzParseHeader is FuzzParseBundle for headers, which may be followed by
// more bytes.
func FuzzParseHeader(f *testing.F) {
	for _, s := range seeds(loadVectors(f), "header") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, rest, err := x3dh.ParseHeader(in)
		if err != nil {
			if h != nil || rest != nil || !errors.Is(err, x3dh.ErrMalformed) {
				t.Fatalf("ParseHeader = %v, %x, %v", h, rest, err)
			}
			return
		}
		out, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(out, rest...), in) {
			t.Fatalf("re-encoded\n%x\nas\n%x", in, out)
		}
	})
}

// FuzzInitiate runs arbitrary bundle bytes through ParseBundle and Initiate.
// Nothing may panic, every failure must be one of the documented errors,
// and a bundle whose keys belong to one of the vectors' responders must
// give Initiate and Respond the same SK and AD.
func FuzzInitiate(f *testing.F) {
	vf := loadVectors(f)
	for _, s := range seeds(vf, "bundle") {
		f.Add(s)
	}
	alice, err := keys.NewIdentityKeyPair(seed32("fuzz alice"))
	if err != nil {
		f.Fatal(err)
	}
	type responder struct {
		ik       *keys.IdentityKeyPair
		spk      *keys.PrivateKey
		opk      *keys.PrivateKey
		opkPub   []byte
		spkPub   []byte
		identity []byte
	}
	bobs := map[string]responder{}
	for _, c := range vf.Valid {
		r := responder{spkPub: c.Bob.SPKPub, identity: c.Bob.IKPub}
		r.ik, _ = keys.NewIdentityKeyPair(c.Bob.IKPriv)
		r.spk, _ = keys.NewPrivateKey(c.Bob.SPKPriv)
		if c.Bob.OPKID != nil {
			r.opk, _ = keys.NewPrivateKey(c.Bob.OPKPriv)
			r.opkPub = c.Bob.OPKPub
		}
		bobs[string(c.Bob.IKPub)+string(c.Bob.SPKPub)] = r
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := x3dh.ParseBundle(in)
		if err != nil {
			return
		}
		init, err := x3dh.Initiate(alice, b, nil)
		if err != nil {
			if init != nil {
				t.Fatal("result with an error")
			}
			if !errors.Is(err, x3dh.ErrInvalidSignature) && !errors.Is(err, x3dh.ErrSmallOrder) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if init.Header.SignedPreKeyID != b.SignedPreKeyID || init.Header.HasOneTimePreKey != (b.OneTimePreKey != nil) ||
			init.Header.OneTimePreKeyID != b.OneTimePreKeyID {
			t.Fatalf("header %+v does not match the bundle", init.Header)
		}
		if !bytes.Equal(init.AD[:], append(alice.PublicKey().Encode(), b.IdentityKey.Encode()...)) {
			t.Fatal("wrong AD")
		}
		bob, ok := bobs[string(b.IdentityKey.Encode())+string(b.SignedPreKey.Encode())]
		if !ok {
			t.Fatal("a bundle not signed by a known responder verified")
		}
		spk, _ := keys.NewSignedPreKey(b.SignedPreKeyID, bob.spk, make([]byte, 64), time.Time{})
		var opk *keys.OneTimePreKey
		if b.OneTimePreKey != nil {
			if !bytes.Equal(b.OneTimePreKey.Encode(), bob.opkPub) {
				return // a one-time prekey we hold no private key for
			}
			opk = keys.NewOneTimePreKey(b.OneTimePreKeyID, bob.opk)
		}
		resp, err := x3dh.Respond(bob.ik, spk, opk, &init.Header, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.SK != init.SK || resp.AD != init.AD {
			t.Fatal("Initiate and Respond disagree")
		}
	})
}
