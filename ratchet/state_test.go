package ratchet

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratchetkit/ratchetkit/aead"
	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
)

// blob is the test's own encoder of the version 1 state layout, written
// from the layout comment, independent of AppendBinary.
type blob struct {
	magic    string
	version  byte
	suite    byte
	maxSkip  uint32
	maxKeys  uint32
	ad       []byte
	rk       [32]byte
	dhsPriv  [32]byte
	dhsPub   [32]byte
	phase    byte
	dhr      [32]byte
	cks      [32]byte
	ns       uint32
	pn       uint32
	ckr      [32]byte
	nr       uint32
	runs     []blobRun
	rawRuns  []byte // replaces runs when set
	trailing []byte
}

type blobRun struct {
	pub  [32]byte
	keys []blobKey
	// lenDelta corrupts the run's length prefix.
	lenDelta int
}

type blobKey struct {
	n  uint32
	mk [32]byte
}

func u24(b []byte, v int) []byte { return append(b, byte(v>>16), byte(v>>8), byte(v)) }

func (x *blob) bytes() []byte {
	b := []byte(x.magic)
	b = append(b, x.version, x.suite)
	b = binary.BigEndian.AppendUint32(b, x.maxSkip)
	b = binary.BigEndian.AppendUint32(b, x.maxKeys)
	b = binary.BigEndian.AppendUint16(b, uint16(len(x.ad)))
	b = append(b, x.ad...)
	b = append(b, x.rk[:]...)
	b = append(b, x.dhsPriv[:]...)
	b = append(b, x.dhsPub[:]...)
	b = append(b, x.phase)
	if x.phase >= 1 {
		b = append(b, x.dhr[:]...)
		b = append(b, x.cks[:]...)
		b = binary.BigEndian.AppendUint32(b, x.ns)
	}
	if x.phase >= 2 {
		b = binary.BigEndian.AppendUint32(b, x.pn)
		b = append(b, x.ckr[:]...)
		b = binary.BigEndian.AppendUint32(b, x.nr)
		runs := x.rawRuns
		if runs == nil {
			for _, r := range x.runs {
				runs = append(runs, r.pub[:]...)
				runs = u24(runs, len(r.keys)*36+r.lenDelta)
				for _, k := range r.keys {
					runs = binary.BigEndian.AppendUint32(runs, k.n)
					runs = append(runs, k.mk[:]...)
				}
			}
		}
		b = u24(b, len(runs))
		b = append(b, runs...)
	}
	return append(b, x.trailing...)
}

// blobOf reads a session's fields into a blob.
func blobOf(s *Session) *blob {
	x := &blob{magic: "rkdr", version: 1, suite: s.suiteID, maxSkip: s.maxSkip, maxKeys: s.maxKeys,
		ad: s.ad(), rk: s.rk, dhsPriv: s.dhsPriv, dhsPub: s.dhsPub, phase: s.phase,
		dhr: s.dhr, cks: s.cks, ns: s.ns, pn: s.pn, ckr: s.ckr, nr: s.nr}
	st := &s.skipped
	for _, c := range st.chains {
		r := blobRun{pub: c.pub}
		for i := max(c.start, st.head); i < c.end; i++ {
			if e := st.at(i); !e.dead {
				r.keys = append(r.keys, blobKey{e.n, e.mk})
			}
		}
		if len(r.keys) > 0 {
			x.runs = append(x.runs, r)
		}
	}
	return x
}

// stateSamples returns sessions in every phase, with skipped keys over
// several runs, including dead slots and a run whose front was evicted.
func stateSamples(t testing.TB) map[string]*Session {
	out := map[string]*Session{}
	alice, bob := newPair(t, &Config{MaxSkippedKeys: 6, MaxSkip: 50, Suite: aead.ChaCha20Poly1305()})
	bobInit, _ := ParseSession(state(t, bob))
	out["responder"] = bobInit
	a := make([][]byte, 5)
	for i := range a {
		a[i] = mustEncrypt(t, alice, fmt.Sprint("a", i))
	}
	aliceInit, _ := ParseSession(state(t, alice))
	out["initiator"] = aliceInit
	mustDecrypt(t, bob, a[3], "a3")
	mustDecrypt(t, bob, a[1], "a1") // a dead slot between live ones
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b0"), "b0")
	a5 := mustEncrypt(t, alice, "a5")
	mustEncrypt(t, alice, "a6")
	a7 := mustEncrypt(t, alice, "a7")
	mustDecrypt(t, bob, a7, "a7") // stores a4 (old chain), a5', a6' (new)
	mustDecrypt(t, bob, a5, "a5")
	out["established"] = bob
	out["initiator-established"] = alice
	if bob.skipped.live != 4 || len(bob.skipped.chains) != 2 {
		t.Fatalf("sample setup: %d keys in %d runs", bob.skipped.live, len(bob.skipped.chains))
	}
	return out
}

func TestStateRoundTrip(t *testing.T) {
	for name, s := range stateSamples(t) {
		t.Run(name, func(t *testing.T) {
			b := state(t, s)
			if want := blobOf(s).bytes(); !bytes.Equal(b, want) {
				t.Fatalf("MarshalBinary differs from the documented layout\n got %x\nwant %x", b, want)
			}
			if len(b) != s.marshaledSize() {
				t.Fatalf("marshaledSize %d, len %d", s.marshaledSize(), len(b))
			}
			p, err := ParseSession(b)
			if err != nil {
				t.Fatal(err)
			}
			if b2 := state(t, p); !bytes.Equal(b, b2) {
				t.Fatal("parse -> marshal is not the identity")
			}
			if ab, _ := p.AppendBinary([]byte("x")); !bytes.Equal(ab[1:], b) || ab[0] != 'x' {
				t.Fatal("AppendBinary")
			}
			// The parsed session carries on as the original does.
			if p.phase != phaseResponder {
				m1, err1 := s.Encrypt([]byte("same"))
				m2, err2 := p.Encrypt([]byte("same"))
				if err1 != nil || err2 != nil || !bytes.Equal(m1, m2) {
					t.Fatal("parsed session encrypts differently")
				}
			}
		})
	}
}

func TestParseStateRejects(t *testing.T) {
	s := stateSamples(t)["established"]
	good := blobOf(s)
	if _, err := ParseSession(good.bytes()); err != nil {
		t.Fatal(err)
	}
	var zero [32]byte
	nonCanonical := [32]byte{0: 0xee}
	for i := 1; i < 31; i++ {
		nonCanonical[i] = 0xff
	}
	nonCanonical[31] = 0x7f
	mk := func(f func(x *blob)) []byte {
		x := *good
		x.runs = nil
		for _, r := range good.runs {
			r.keys = append([]blobKey(nil), r.keys...)
			x.runs = append(x.runs, r)
		}
		f(&x)
		return x.bytes()
	}
	cases := map[string][]byte{
		"empty":                 {},
		"magic only":            []byte("rkdr"),
		"bad magic":             mk(func(x *blob) { x.magic = "rkdR" }),
		"version 0":             mk(func(x *blob) { x.version = 0 }),
		"version 2":             mk(func(x *blob) { x.version = 2 }),
		"suite 0":               mk(func(x *blob) { x.suite = 0 }),
		"suite 3":               mk(func(x *blob) { x.suite = 3 }),
		"max_skip":              mk(func(x *blob) { x.maxSkip = MaxLimit + 1 }),
		"max_skipped_keys":      mk(func(x *blob) { x.maxKeys = MaxLimit + 1 }),
		"phase 3":               mk(func(x *blob) { x.phase = 3 }),
		"dhs_public":            mk(func(x *blob) { x.dhsPub = nonCanonical }),
		"dhr":                   mk(func(x *blob) { x.dhr = nonCanonical }),
		"dhr bit 255":           mk(func(x *blob) { x.dhr[31] |= 0x80 }),
		"ns 2^32-1":             mk(func(x *blob) { x.ns = 1<<32 - 1 }),
		"pn 2^32-1":             mk(func(x *blob) { x.pn = 1<<32 - 1 }),
		"keys over cap":         mk(func(x *blob) { x.maxKeys = 3 }),
		"run length not 36k":    mk(func(x *blob) { x.runs[0].lenDelta = 1 }),
		"run length short":      mk(func(x *blob) { x.runs[0].lenDelta = -36 }),
		"empty run":             mk(func(x *blob) { x.runs = append(x.runs, blobRun{pub: x.runs[0].pub}) }),
		"n out of order":        mk(func(x *blob) { k := x.runs[0].keys; k[0], k[1] = k[1], k[0] }),
		"n repeated in run":     mk(func(x *blob) { x.runs[0].keys[1].n = x.runs[0].keys[0].n }),
		"n 2^32-1":              mk(func(x *blob) { x.runs[0].keys[len(x.runs[0].keys)-1].n = 1<<32 - 1 }),
		"run key non-canonical": mk(func(x *blob) { x.runs[0].pub = nonCanonical }),
		"duplicate across runs": mk(func(x *blob) { x.runs = append(x.runs, blobRun{pub: x.runs[0].pub, keys: x.runs[0].keys[:1]}) }),
		"trailing byte":         mk(func(x *blob) { x.trailing = []byte{0} }),
		"skipped vector short":  mk(func(x *blob) { x.rawRuns = []byte{1, 2, 3} }),
		"initiator with pn/ckr": mk(func(x *blob) { x.phase = 1; x.trailing = make([]byte, 4+32+4+3) }),
		"responder with chains": mk(func(x *blob) { x.phase = 0; x.trailing = bytes.Repeat([]byte{1}, 68) }),
		"huge run length":       mk(func(x *blob) { x.rawRuns = append(zero[:], 0xff, 0xff, 0xfc) }),
		"phase 1 ns 2^32-1":     mk(func(x *blob) { x.phase = 1; x.ns = 1<<32 - 1 }),
	}
	// Every strict prefix of a valid blob is truncated.
	g := good.bytes()
	for i := range len(g) {
		cases[fmt.Sprintf("truncated to %d", i)] = g[:i]
	}
	for name, b := range cases {
		if _, err := ParseSession(b); !errors.Is(err, ErrInvalidState) {
			t.Errorf("%s: ParseSession error %v", name, err)
		}
	}
	// Duplicates in different runs are fine when the numbers differ.
	ok := mk(func(x *blob) {
		x.runs = append(x.runs, blobRun{pub: x.runs[0].pub, keys: []blobKey{{n: 1000, mk: zero}}})
	})
	if _, err := ParseSession(ok); err != nil {
		t.Errorf("two runs of one key with distinct numbers: %v", err)
	}
}

func TestParseStateManyRuns(t *testing.T) {
	// Many runs of one ratchet key, as a hostile blob might hold: the
	// duplicate check must stay fast and exact.
	s := stateSamples(t)["established"]
	x := blobOf(s)
	x.maxKeys = MaxLimit
	x.runs = nil
	var pub [32]byte
	pub[0] = 9
	for i := range MaxLimit {
		x.runs = append(x.runs, blobRun{pub: pub, keys: []blobKey{{n: uint32(MaxLimit - i)}}})
	}
	b := x.bytes()
	p, err := ParseSession(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state(t, p), b) {
		t.Fatal("round trip")
	}
	x.runs[MaxLimit-1].keys[0].n = MaxLimit / 2
	if _, err := ParseSession(x.bytes()); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("duplicate among %d runs not found: %v", MaxLimit, err)
	}
}

// Golden state blobs: every released state version must parse forever.
// Each file comes with a record of what the session must do next.
const goldenDir = "../testdata/ratchet/state"

type goldenRecord struct {
	File        string       `json:"file"`
	Description string       `json:"description"`
	Decrypt     []goldenStep `json:"decrypt"`
	Encrypt     *goldenStep  `json:"encrypt"`
}

type goldenStep struct {
	Msg    hexBytes `json:"msg"`
	Pt     hexBytes `json:"pt"`
	DHPriv hexBytes `json:"dh_priv,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// goldenV1 builds the version 1 golden sessions deterministically.
func goldenV1(t *testing.T) (map[string][]byte, []goldenRecord) {
	key := func(s string) *keys.PrivateKey { return mustPriv(t, vecKey("golden v1", s)) }
	sk := vecKey("golden v1", "sk")
	ad := vecKey("golden v1", "ad")
	cfg := &Config{}
	hazmat.SetRatchetKeySource(cfg, hazmat.Keys(key("alice0")))
	spk := key("spk")
	alice, err := NewInitiator(sk, ad, spk.PublicKey(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := NewResponder(sk, ad, spk, &Config{MaxSkip: 100, MaxSkippedKeys: 50, Suite: aead.ChaCha20Poly1305()})
	bobAES, _ := NewResponder(sk, ad, spk, nil)
	files := map[string][]byte{}
	var recs []goldenRecord
	a := make([][]byte, 6)
	for i := range a {
		a[i] = mustEncrypt(t, alice, fmt.Sprint("a", i))
	}
	files["v1-responder.bin"] = state(t, bobAES)
	files["v1-initiator.bin"] = state(t, alice)
	recs = append(recs,
		goldenRecord{File: "v1-responder.bin", Description: "responder before its first message (AES-256-GCM, default limits)",
			Decrypt: []goldenStep{{Msg: a[2], Pt: []byte("a2"), DHPriv: vecKey("golden v1", "bob1")}, {Msg: a[0], Pt: []byte("a0")}}},
		goldenRecord{File: "v1-initiator.bin", Description: "initiator after sending six messages, nothing received",
			Encrypt: &goldenStep{Pt: []byte("a6")}})

	// An established session with skipped keys over two runs.
	alice, _ = NewInitiator(sk, ad, spk.PublicKey(), withKeys(&Config{MaxSkip: 100, MaxSkippedKeys: 50, Suite: aead.ChaCha20Poly1305()}, key("alice0")))
	for i := range a {
		a[i] = mustEncrypt(t, alice, fmt.Sprint("a", i))
	}
	hazmat.SetRatchetKeySource(bob, hazmat.Keys(key("bob1")))
	mustDecrypt(t, bob, a[4], "a4")
	mustDecrypt(t, bob, a[1], "a1")
	hazmat.SetRatchetKeySource(alice, hazmat.Keys(key("alice1")))
	mustDecrypt(t, alice, mustEncrypt(t, bob, "b0"), "b0")
	c0 := mustEncrypt(t, alice, "c0")
	c1 := mustEncrypt(t, alice, "c1")
	c2 := mustEncrypt(t, alice, "c2")
	hazmat.SetRatchetKeySource(bob, hazmat.Keys(key("bob2")))
	mustDecrypt(t, bob, c2, "c2")
	files["v1-established.bin"] = state(t, bob)
	recs = append(recs, goldenRecord{File: "v1-established.bin",
		Description: "responder after two DH steps holding skipped keys a0, a2, a3, a5 (old chain) and c0, c1 (current chain); ChaCha20-Poly1305, max_skip 100, max_skipped_keys 50",
		Decrypt: []goldenStep{
			{Msg: a[3], Pt: []byte("a3")}, {Msg: c0, Pt: []byte("c0")}, {Msg: a[0], Pt: []byte("a0")},
			{Msg: a[1], Error: "auth_failed"}, {Msg: c2, Error: "duplicate"}, {Msg: c1, Pt: []byte("c1")},
		},
		Encrypt: &goldenStep{Pt: []byte("b1")}})
	return files, recs
}

func withKeys(cfg *Config, ks ...*keys.PrivateKey) *Config {
	hazmat.SetRatchetKeySource(cfg, hazmat.Keys(ks...))
	return cfg
}

func TestGoldenState(t *testing.T) {
	for _, g := range []struct {
		manifest string
		build    func(*testing.T) (map[string][]byte, []goldenRecord)
	}{{"v1.json", goldenV1}, {"signal-v2.json", goldenSignalV2}, {"signal-v2-spqr.json", goldenSignalV2Full}} {
		t.Run(g.manifest, func(t *testing.T) { testGolden(t, filepath.Join(goldenDir, g.manifest), g.build) })
	}
}

func testGolden(t *testing.T, manifest string, build func(*testing.T) (map[string][]byte, []goldenRecord)) {
	if *update {
		// Released versions are never rewritten, only created.
		if _, err := os.Stat(manifest); errors.Is(err, os.ErrNotExist) {
			files, recs := build(t)
			if err := os.MkdirAll(goldenDir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range files {
				if err := os.WriteFile(filepath.Join(goldenDir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// The encrypt outputs come from the sessions as stored.
			for i := range recs {
				if recs[i].Encrypt != nil {
					s, err := ParseSession(files[recs[i].File])
					if err != nil {
						t.Fatal(err)
					}
					recs[i].Encrypt.Msg = mustEncrypt(t, s, string(recs[i].Encrypt.Pt))
				}
			}
			j, _ := json.MarshalIndent(recs, "", " ")
			if err := os.WriteFile(manifest, append(j, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	j, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var recs []goldenRecord
	if err := json.Unmarshal(j, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) < 3 {
		t.Fatalf("%d golden records", len(recs))
	}
	for _, r := range recs {
		t.Run(r.File, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(goldenDir, r.File))
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseSession(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(state(t, s), b) {
				t.Fatal("golden blob does not re-marshal to itself")
			}
			// A state of minimal SPQR moves to full SPQR with its first
			// message: that message carries a braid chunk, with the same
			// SPQR epoch and index and so the same keys and ciphertext.
			_, upgrading := s.pqState().(*upgradePQ)
			if r.Encrypt != nil {
				e, _ := ParseSession(b)
				m, err := e.Encrypt(r.Encrypt.Pt)
				if upgrading && err == nil {
					sameExceptSPQR(t, m, r.Encrypt.Msg)
					if pqKind(e.sig.pq) != pqKindFull {
						t.Fatal("not upgraded by Encrypt")
					}
				} else if err != nil || !bytes.Equal(m, r.Encrypt.Msg) {
					t.Fatalf("Encrypt: %v\n got %x\nwant %x", err, m, []byte(r.Encrypt.Msg))
				}
			}
			for i, d := range r.Decrypt {
				if d.DHPriv != nil {
					hazmat.SetRatchetKeySource(s, hazmat.Keys(mustPriv(t, d.DHPriv)))
				}
				pt, err := s.Decrypt(d.Msg)
				if kind := errorKind(err); kind != d.Error {
					t.Fatalf("decrypt %d: error %q, want %q", i, kind, d.Error)
				}
				if err == nil && !bytes.Equal(pt, d.Pt) {
					t.Fatalf("decrypt %d: %q, want %q", i, pt, d.Pt)
				}
			}
			if upgrading && r.Decrypt != nil {
				if pqKind(s.sig.pq) != pqKindFull {
					t.Fatal("not upgraded by Decrypt")
				}
				if p, err := ParseSession(state(t, s)); err != nil || !bytes.Equal(state(t, p), state(t, s)) {
					t.Fatalf("the upgraded state does not re-marshal to itself: %v", err)
				}
			}
		})
	}
}

func TestUnmarshalBinary(t *testing.T) {
	samples := stateSamples(t)
	est := state(t, samples["established"])
	resp := state(t, samples["responder"])
	s := new(Session)
	if err := s.UnmarshalBinary(est); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state(t, s), est) {
		t.Fatal("UnmarshalBinary into a zero Session")
	}
	ring := s.skipped.ring
	// A failed UnmarshalBinary leaves the session as it was.
	for _, bad := range [][]byte{nil, est[:len(est)-1], append(bytes.Clone(resp), 1)} {
		if err := s.UnmarshalBinary(bad); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("UnmarshalBinary of a bad blob: %v", err)
		}
		if !bytes.Equal(state(t, s), est) {
			t.Fatal("failed UnmarshalBinary changed the session")
		}
	}
	// A successful one replaces the state and wipes the old skipped keys.
	if err := s.UnmarshalBinary(resp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state(t, s), resp) || len(s.skipped.ring) != 0 {
		t.Fatal("UnmarshalBinary did not replace the state")
	}
	for _, e := range ring {
		if e.mk != ([32]byte{}) {
			t.Fatal("old skipped keys not wiped")
		}
	}
	// Long associated data lives outside the struct; a copy stays correct.
	alice, bob := newPair(t, nil)
	long := make([]byte, 300)
	for _, x := range []*Session{alice, bob} {
		x.setAD(long)
	}
	mustDecrypt(t, bob, mustEncrypt(t, alice, "long ad"), "long ad")
	if err := s.UnmarshalBinary(state(t, bob)); err != nil {
		t.Fatal(err)
	}
	mustDecrypt(t, s, mustEncrypt(t, alice, "via reused session"), "via reused session")
}
