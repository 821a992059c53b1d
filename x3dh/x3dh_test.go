package x3dh_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// party is a responder with everything both sides need in a test.
type party struct {
	ik  *keys.IdentityKeyPair
	spk *keys.SignedPreKey
	opk *keys.OneTimePreKey // may be nil
}

func (p *party) bundle() *x3dh.Bundle { return bundleOf(p.ik, p.spk, p.opk) }

// seededKey draws a private key from r.
func seededKey(tb testing.TB, r *rand.ChaCha8) *keys.PrivateKey {
	var b [32]byte
	r.Read(b[:])
	k, err := keys.NewPrivateKey(b[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func seededParty(tb testing.TB, r *rand.ChaCha8, withOPK bool) *party {
	var b [32]byte
	r.Read(b[:])
	ik, err := keys.NewIdentityKeyPair(b[:])
	if err != nil {
		tb.Fatal(err)
	}
	p := &party{ik: ik}
	spkKey := seededKey(tb, r)
	p.spk, err = keys.NewSignedPreKey(uint32(r.Uint64()), spkKey, ik.Sign(spkKey.PublicKey().Encode()), time0)
	if err != nil {
		tb.Fatal(err)
	}
	if withOPK {
		p.opk = keys.NewOneTimePreKey(uint32(r.Uint64()), seededKey(tb, r))
	}
	return p
}

// referenceSK computes SK from Bob's private keys and Alice's header with
// crypto/ecdh and crypto/hkdf only.
func referenceSK(p *party, h *x3dh.Header, info []byte) []byte {
	ikA, ekA := h.IdentityKey.Encode(), h.EphemeralKey.Encode()
	ikm := bytes.Repeat([]byte{0xff}, 32)
	ikm = append(ikm, refDH(p.spk.PrivateKey().Bytes(), ikA)...)
	ikm = append(ikm, refDH(p.ik.PrivateKey().Bytes(), ekA)...)
	ikm = append(ikm, refDH(p.spk.PrivateKey().Bytes(), ekA)...)
	if p.opk != nil {
		ikm = append(ikm, refDH(p.opk.PrivateKey().Bytes(), ekA)...)
	}
	if len(info) == 0 {
		info = []byte(defaultInfo)
	}
	return refSK(ikm, info)
}

// TestAgreementProperty runs X3DH between random parties, with and without
// one-time prekeys, with assorted info strings and with the ephemeral key
// both injected (seeded) and drawn by Initiate itself, and checks that
// both sides and an independent standard-library computation agree.
func TestAgreementProperty(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	r := rand.NewChaCha8([32]byte{'x', '3', 'd', 'h'})
	infos := [][]byte{nil, {}, []byte(defaultInfo), []byte("app"), bytes.Repeat([]byte{0xa5}, 257)}
	for i := range n {
		withOPK := i%3 != 0
		alice := seededParty(t, r, false).ik
		bob := seededParty(t, r, withOPK)
		info := infos[i%len(infos)]
		cfg := &x3dh.Config{Info: info}
		var ek *keys.PrivateKey
		if i%2 == 0 {
			ek = seededKey(t, r)
			hazmat.SetX3DHKeySource(cfg, hazmat.Keys(ek))
		}

		enc := mustMarshal(t, bob.bundle())
		if want := map[bool]int{false: 136, true: 173}[withOPK]; len(enc) != want {
			t.Fatalf("bundle of %d bytes, want %d", len(enc), want)
		}
		b, err := x3dh.ParseBundle(enc)
		if err != nil {
			t.Fatal(err)
		}
		in, err := x3dh.Initiate(alice, b, cfg)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if ek != nil && !in.Header.EphemeralKey.Equal(ek.PublicKey()) {
			t.Fatalf("case %d: the key source's ephemeral key was not used", i)
		}
		hb, err := in.Header.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		h, rest, err := x3dh.ParseHeader(hb)
		if err != nil || len(rest) != 0 {
			t.Fatalf("case %d: ParseHeader: %v, %d bytes left", i, err, len(rest))
		}
		if h.HasOneTimePreKey != withOPK || h.SignedPreKeyID != bob.spk.ID() ||
			(withOPK && h.OneTimePreKeyID != bob.opk.ID()) || !h.IdentityKey.Equal(alice.PublicKey()) {
			t.Fatalf("case %d: header %+v does not name the bundle's prekeys", i, h)
		}
		resp, err := x3dh.Respond(bob.ik, bob.spk, bob.opk, h, &x3dh.Config{Info: info})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if in.SK != resp.SK || in.AD != resp.AD {
			t.Fatalf("case %d: the two sides disagree", i)
		}
		eq(t, "SK vs crypto/ecdh+hkdf", in.SK[:], referenceSK(bob, h, info))
		eq(t, "AD", in.AD[:], append(alice.PublicKey().Encode(), bob.ik.PublicKey().Encode()...))

		// The info string is really used.
		other, err := x3dh.Respond(bob.ik, bob.spk, bob.opk, h, &x3dh.Config{Info: []byte("other")})
		if err != nil {
			t.Fatal(err)
		}
		if other.SK == resp.SK {
			t.Fatalf("case %d: SK does not depend on info", i)
		}
	}
}

// TestFreshEphemeral checks that Initiate draws a new ephemeral key, and so
// a new SK, every time.
func TestFreshEphemeral(t *testing.T) {
	r := rand.NewChaCha8([32]byte{1})
	alice, bob := seededParty(t, r, false).ik, seededParty(t, r, true)
	seen := map[string]bool{}
	for range 20 {
		in, err := x3dh.Initiate(alice, bob.bundle(), nil)
		if err != nil {
			t.Fatal(err)
		}
		k := string(in.Header.EphemeralKey.Encode()) + string(in.SK[:])
		if seen[k] {
			t.Fatal("ephemeral key or SK repeated")
		}
		seen[k] = true
	}
}

func TestConfigDefaults(t *testing.T) {
	r := rand.NewChaCha8([32]byte{2})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	ekRaw := seededKey(t, r).Bytes()
	run := func(cfg *x3dh.Config) [32]byte {
		if cfg == nil {
			cfg = &x3dh.Config{}
		}
		ek, _ := keys.NewPrivateKey(ekRaw)
		hazmat.SetX3DHKeySource(cfg, hazmat.Keys(ek))
		in, err := x3dh.Initiate(alice, bob.bundle(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return in.SK
	}
	def := run(&x3dh.Config{Info: []byte(defaultInfo)})
	for _, cfg := range []*x3dh.Config{nil, {}, {Info: []byte{}}} {
		if run(cfg) != def {
			t.Errorf("Config %+v does not use the default info", cfg)
		}
	}
	if run(&x3dh.Config{Info: []byte(defaultInfo + " ")}) == def {
		t.Error("a different info gave the default SK")
	}
}

// TestKeySourceError checks that a failing key source aborts Initiate with
// its error and no result.
func TestKeySourceError(t *testing.T) {
	r := rand.NewChaCha8([32]byte{3})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	cfg := &x3dh.Config{}
	hazmat.SetX3DHKeySource(cfg, hazmat.Keys())
	in, err := x3dh.Initiate(alice, bob.bundle(), cfg)
	if err == nil || in != nil || !strings.Contains(err.Error(), "key source exhausted") {
		t.Fatalf("Initiate = %v, %v; want the key source's error", in, err)
	}
	for _, e := range allErrors {
		if errors.Is(err, e) {
			t.Errorf("key source failure matches %v", e)
		}
	}
}

func TestInitiateInputErrors(t *testing.T) {
	r := rand.NewChaCha8([32]byte{4})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	zeroKey := new(keys.PublicKey) // u = 0: small order
	cases := []struct {
		name string
		ik   *keys.IdentityKeyPair
		b    func() *x3dh.Bundle
		want []error
	}{
		{"nil identity", nil, bob.bundle, nil},
		{"nil bundle", alice, func() *x3dh.Bundle { return nil }, []error{x3dh.ErrMalformed}},
		{"no identity key", alice, func() *x3dh.Bundle { b := bob.bundle(); b.IdentityKey = nil; return b }, []error{x3dh.ErrMalformed}},
		{"no signed prekey", alice, func() *x3dh.Bundle { b := bob.bundle(); b.SignedPreKey = nil; return b }, []error{x3dh.ErrMalformed}},
		{"opk id without key", alice, func() *x3dh.Bundle { b := bob.bundle(); b.OneTimePreKey = nil; return b }, []error{x3dh.ErrMalformed}},
		{"nil signature", alice, func() *x3dh.Bundle { b := bob.bundle(); b.SignedPreKeySignature = nil; return b }, []error{x3dh.ErrInvalidSignature}},
		{"zero-value identity key", alice, func() *x3dh.Bundle { b := bob.bundle(); b.IdentityKey = zeroKey; return b }, []error{x3dh.ErrSmallOrder}},
		{"zero-value one-time prekey", alice, func() *x3dh.Bundle { b := bob.bundle(); b.OneTimePreKey = zeroKey; return b }, []error{x3dh.ErrSmallOrder}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := x3dh.Initiate(c.ik, c.b(), nil)
			if in != nil {
				t.Error("result with an error")
			}
			if c.want == nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, e := range allErrors {
					if errors.Is(err, e) {
						t.Errorf("%v matches %v", err, e)
					}
				}
				return
			}
			checkErr(t, err, c.want)
			if err2 := c.b().Verify(); c.ik != nil && !errors.Is(err2, c.want[0]) {
				t.Errorf("Bundle.Verify = %v, want %v", err2, c.want[0])
			}
		})
	}
}

func TestRespondInputErrors(t *testing.T) {
	r := rand.NewChaCha8([32]byte{5})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	in, err := x3dh.Initiate(alice, bob.bundle(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := in.Header
	cases := []struct {
		name string
		ik   *keys.IdentityKeyPair
		spk  *keys.SignedPreKey
		h    *x3dh.Header
		want error
	}{
		{"nil identity", nil, bob.spk, &h, nil},
		{"nil signed prekey", bob.ik, nil, &h, nil},
		{"nil header", bob.ik, bob.spk, nil, x3dh.ErrMalformed},
		{"header without identity key", bob.ik, bob.spk, &x3dh.Header{EphemeralKey: h.EphemeralKey, SignedPreKeyID: h.SignedPreKeyID}, x3dh.ErrMalformed},
		{"header without ephemeral key", bob.ik, bob.spk, &x3dh.Header{IdentityKey: h.IdentityKey, SignedPreKeyID: h.SignedPreKeyID}, x3dh.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := x3dh.Respond(c.ik, c.spk, bob.opk, c.h, nil)
			if resp != nil || err == nil {
				t.Fatalf("Respond = %v, %v", resp, err)
			}
			if c.want == nil {
				for _, e := range allErrors {
					if errors.Is(err, e) {
						t.Errorf("%v matches %v", err, e)
					}
				}
				return
			}
			checkErr(t, err, []error{c.want})
		})
	}
}

// TestBundleEncoding checks MarshalBinary's refusals and the layout's
// sizes and offsets, which the test spells out itself.
func TestBundleEncoding(t *testing.T) {
	r := rand.NewChaCha8([32]byte{6})
	bob := seededParty(t, r, true)
	b := bob.bundle()
	enc := mustMarshal(t, b)
	want := []byte{0x01, 0x01}
	want = append(want, bob.ik.PublicKey().Encode()...)
	want = binary.BigEndian.AppendUint32(want, bob.spk.ID())
	want = append(want, bob.spk.PublicKey().Encode()...)
	want = append(want, bob.spk.Signature()...)
	want = binary.BigEndian.AppendUint32(want, bob.opk.ID())
	want = append(want, bob.opk.PublicKey().Encode()...)
	eq(t, "bundle", enc, want)

	prefix := []byte("prefix")
	app, err := b.AppendBinary(prefix)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "AppendBinary", app, append([]byte("prefix"), want...))

	for name, mut := range map[string]func(*x3dh.Bundle){
		"no identity key":    func(b *x3dh.Bundle) { b.IdentityKey = nil },
		"no signed prekey":   func(b *x3dh.Bundle) { b.SignedPreKey = nil },
		"short signature":    func(b *x3dh.Bundle) { b.SignedPreKeySignature = b.SignedPreKeySignature[:63] },
		"long signature":     func(b *x3dh.Bundle) { b.SignedPreKeySignature = append(b.SignedPreKeySignature, 0) },
		"opk id without key": func(b *x3dh.Bundle) { b.OneTimePreKey = nil },
	} {
		b := bob.bundle()
		mut(b)
		out, err := b.AppendBinary(prefix)
		if !errors.Is(err, x3dh.ErrMalformed) || string(out) != "prefix" {
			t.Errorf("%s: AppendBinary = %q, %v; want the prefix and ErrMalformed", name, out, err)
		}
	}
	var nilBundle *x3dh.Bundle
	if _, err := nilBundle.MarshalBinary(); !errors.Is(err, x3dh.ErrMalformed) {
		t.Errorf("nil bundle: %v", err)
	}

	// The parsed bundle owns its bytes.
	p, err := x3dh.ParseBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	clear(enc)
	eq(t, "signature after the input was cleared", p.SignedPreKeySignature, bob.spk.Signature())
}

func TestHeaderEncoding(t *testing.T) {
	r := rand.NewChaCha8([32]byte{7})
	ikA, ekA := seededKey(t, r).PublicKey(), seededKey(t, r).PublicKey()
	h := &x3dh.Header{IdentityKey: ikA, EphemeralKey: ekA, SignedPreKeyID: 0x01020304, HasOneTimePreKey: true, OneTimePreKeyID: 0xa0b0c0d0}
	enc, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{0x01}, ikA.Encode()...), ekA.Encode()...)
	want = append(want, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0)
	eq(t, "header", enc, want)

	h0 := *h
	h0.HasOneTimePreKey, h0.OneTimePreKeyID = false, 0
	enc0, err := h0.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want0 := append(append([]byte{0x00}, ikA.Encode()...), ekA.Encode()...)
	eq(t, "header without opk", enc0, append(want0, 1, 2, 3, 4))

	got, rest, err := x3dh.ParseHeader(append(enc0, 0xee))
	if err != nil || !got.Equal(&h0) || !bytes.Equal(rest, []byte{0xee}) {
		t.Errorf("ParseHeader = %+v, %x, %v", got, rest, err)
	}
	if got.Equal(h) || h.Equal(nil) || !(*x3dh.Header)(nil).Equal(nil) {
		t.Error("Equal confuses headers")
	}
	for name, mut := range map[string]func(*x3dh.Header){
		"ik":     func(x *x3dh.Header) { x.IdentityKey = ekA },
		"ek":     func(x *x3dh.Header) { x.EphemeralKey = ikA },
		"spk_id": func(x *x3dh.Header) { x.SignedPreKeyID++ },
		"opk_id": func(x *x3dh.Header) { x.OneTimePreKeyID++ },
		"flag":   func(x *x3dh.Header) { x.HasOneTimePreKey = false },
	} {
		x := *h
		mut(&x)
		if x.Equal(h) {
			t.Errorf("Equal ignores %s", name)
		}
	}

	bad := *h
	bad.HasOneTimePreKey = false
	if _, err := bad.MarshalBinary(); !errors.Is(err, x3dh.ErrMalformed) {
		t.Errorf("opk id without flag: %v", err)
	}
	bad = *h
	bad.EphemeralKey = nil
	if _, err := bad.MarshalBinary(); !errors.Is(err, x3dh.ErrMalformed) {
		t.Errorf("no ephemeral key: %v", err)
	}
}

// TestBundleBitFlips flips every bit of a valid bundle and checks what each
// flip must do: the version, flags and key encodings fail to parse or fail
// the checks, a changed signature or signed prekey fails verification, and
// the unsigned parts (ids, the one-time prekey) still parse and re-encode
// identically. Nothing panics.
func TestBundleBitFlips(t *testing.T) {
	r := rand.NewChaCha8([32]byte{8})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	enc := mustMarshal(t, bob.bundle())
	const (
		ikAt, spkIDAt, spkAt, sigAt, opkIDAt, opkAt = 2, 35, 39, 72, 136, 140
	)
	for i := range len(enc) * 8 {
		m := append([]byte{}, enc...)
		m[i/8] ^= 1 << (i % 8)
		pos := i / 8
		b, err := x3dh.ParseBundle(m)
		if err != nil {
			if !errors.Is(err, x3dh.ErrMalformed) {
				t.Fatalf("flip %d: %v does not wrap ErrMalformed", i, err)
			}
			if pos >= spkIDAt && pos < spkAt || pos >= sigAt && pos < opkAt {
				t.Fatalf("flip %d in an id or the signature made the bundle unparseable: %v", i, err)
			}
			continue
		}
		eq(t, fmt.Sprintf("flip %d re-encoded", i), mustMarshal(t, b), m)
		_, err = x3dh.Initiate(alice, b, nil)
		switch {
		case pos < ikAt:
			t.Fatalf("flip %d in version or flags parsed", i)
		case pos < spkAt && pos >= spkIDAt, pos >= opkIDAt:
			// Ids and the one-time prekey are not signed.
			if err != nil && !errors.Is(err, x3dh.ErrSmallOrder) {
				t.Fatalf("flip %d in an unsigned field: %v", i, err)
			}
		default:
			if !errors.Is(err, x3dh.ErrInvalidSignature) && !errors.Is(err, x3dh.ErrSmallOrder) {
				t.Fatalf("flip %d in a signed field: %v", i, err)
			}
		}
	}
}

// TestNoPanics feeds ParseBundle and ParseHeader every prefix of valid
// encodings and some random garbage.
func TestNoPanics(t *testing.T) {
	r := rand.NewChaCha8([32]byte{9})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	enc := mustMarshal(t, bob.bundle())
	in, err := x3dh.Initiate(alice, bob.bundle(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := in.Header.MarshalBinary()
	for n := range len(enc) {
		if _, err := x3dh.ParseBundle(enc[:n]); !errors.Is(err, x3dh.ErrMalformed) {
			t.Fatalf("bundle prefix of %d bytes: %v", n, err)
		}
	}
	for n := range len(hdr) {
		if _, _, err := x3dh.ParseHeader(hdr[:n]); !errors.Is(err, x3dh.ErrMalformed) {
			t.Fatalf("header prefix of %d bytes: %v", n, err)
		}
	}
	buf := make([]byte, 200)
	for range 2000 {
		m := buf[:r.Uint64()%200]
		r.Read(m)
		if len(m) > 1 && r.Uint64()%2 == 0 {
			m[0], m[1] = 0x01, byte(r.Uint64()%2) // a plausible version and flags
		}
		if b, err := x3dh.ParseBundle(m); err == nil {
			x3dh.Initiate(alice, b, nil)
		}
		if h, _, err := x3dh.ParseHeader(m); err == nil {
			x3dh.Respond(bob.ik, bob.spk, nil, h, nil)
		}
	}
}

// TestRedaction checks that SK shows up in no formatted output.
func TestRedaction(t *testing.T) {
	r := rand.NewChaCha8([32]byte{10})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	in, err := x3dh.Initiate(alice, bob.bundle(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := x3dh.ParseHeader(must(in.Header.MarshalBinary()))
	resp, err := x3dh.Respond(bob.ik, bob.spk, bob.opk, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		In   x3dh.Initiation
		Resp x3dh.Response
	}
	secrets := []string{hex.EncodeToString(in.SK[:]), strings.ToUpper(hex.EncodeToString(in.SK[:])),
		string(in.SK[:]), strings.Trim(fmt.Sprint(in.SK[:]), "[]")}
	for _, v := range []any{in, *in, resp, *resp, holder{*in, *resp}, &holder{*in, *resp}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			out := fmt.Sprintf(verb, v)
			if !strings.Contains(out, "REDACTED") {
				t.Errorf("%s of %T: %q has no REDACTED", verb, v, out)
			}
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s of %T leaks SK: %q", verb, v, out)
				}
			}
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestClear checks that Clear wipes SK.
func TestClear(t *testing.T) {
	r := rand.NewChaCha8([32]byte{11})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	in, err := x3dh.Initiate(alice, bob.bundle(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := x3dh.Respond(bob.ik, bob.spk, bob.opk, &in.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.SK == [32]byte{} || resp.SK != in.SK {
		t.Fatal("no agreement")
	}
	ad := in.AD
	in.Clear()
	resp.Clear()
	if in.SK != [32]byte{} || resp.SK != [32]byte{} {
		t.Error("Clear left SK")
	}
	if in.AD != ad || in.Header.EphemeralKey == nil {
		t.Error("Clear touched public data")
	}
}

// TestConcurrent shares one bundle and one identity between goroutines; the
// race detector checks the key caches.
func TestConcurrent(t *testing.T) {
	r := rand.NewChaCha8([32]byte{12})
	alice, bob := seededParty(t, r, true).ik, seededParty(t, r, true)
	b, err := x3dh.ParseBundle(mustMarshal(t, bob.bundle()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			in, err := x3dh.Initiate(alice, b, nil)
			if err != nil {
				errs <- err
				return
			}
			resp, err := x3dh.Respond(bob.ik, bob.spk, bob.opk, &in.Header, nil)
			if err != nil {
				errs <- err
				return
			}
			if resp.SK != in.SK {
				errs <- errors.New("disagreement")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
