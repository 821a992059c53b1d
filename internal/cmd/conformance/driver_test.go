package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The error kinds of PROTOCOL.md 8.1, written out here rather than taken
// from the driver, so that a renamed kind fails the test.
var pinnedKinds = []string{
	"invalid_signature", "bad_key", "malformed", "unknown_type", "auth_failed",
	"duplicate", "too_many_skipped", "unknown_prekey", "no_session",
	"counter_overflow", "untrusted_identity", "unknown_session",
}

// peer is the driver running as a child process, as a harness runs it.
type peer struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
	// kinds counts the error kinds answered, for TestDriver/every_kind.
	kinds map[string]int
}

// buildDriver builds the driver once per test binary run, into a
// directory that lives as long as t.
func buildDriver(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "conformance")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startPeer(t *testing.T, bin string, kinds map[string]int) *peer {
	t.Helper()
	p := &peer{t: t, cmd: exec.Command(bin), kinds: kinds}
	p.cmd.Stderr = &p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.in.Close()
			p.cmd.Wait()
		}
	})
	return p
}

// call sends one request (a value to marshal, or a raw line as a string)
// and returns the answer, which must be one JSON object on one line.
func (p *peer) call(req any) map[string]any {
	p.t.Helper()
	line, ok := req.(string)
	if !ok {
		b, err := json.Marshal(req)
		if err != nil {
			p.t.Fatal(err)
		}
		line = string(b)
	}
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatalf("writing to the driver: %v (stderr: %s)", err, p.stderr.String())
	}
	ans, err := p.out.ReadBytes('\n')
	if err != nil {
		p.t.Fatalf("reading from the driver: %v (stderr: %s)", err, p.stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(ans, &m); err != nil || m == nil {
		p.t.Fatalf("answer to %.200s is not a JSON object: %q", line, ans)
	}
	if k, ok := m["error"].(string); ok && p.kinds != nil {
		p.kinds[k]++
	}
	return m
}

// expect calls and compares the answer with want as JSON values.
func (p *peer) expect(name string, req any, want map[string]any) map[string]any {
	p.t.Helper()
	got := p.call(req)
	if !sameJSON(got, want) {
		p.t.Errorf("%s: got %s, want %s", name, mustJSON(got), mustJSON(want))
	}
	return got
}

// finish closes stdin and checks that the driver exits with status 0 and
// has reported no internal error.
func (p *peer) finish() {
	p.t.Helper()
	p.in.Close()
	if err := p.cmd.Wait(); err != nil {
		p.t.Errorf("driver exit: %v", err)
	}
	if p.stderr.Len() != 0 {
		p.t.Errorf("driver wrote to stderr: %s", p.stderr.String())
	}
}

func sameJSON(a, b map[string]any) bool { return mustJSON(a) == mustJSON(b) }

// mustJSON encodes with sorted keys, so equal values give equal strings.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func errAns(kind string) map[string]any { return map[string]any{"error": kind} }

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestDriver runs the built driver through every operation and every error
// kind, against the committed vectors where they apply and against
// PROTOCOL.md's Appendix A and precedence rules elsewhere.
func TestDriver(t *testing.T) {
	bin := buildDriver(t)
	kinds := make(map[string]int)
	run := func(name string, f func(t *testing.T, p *peer)) {
		t.Run(name, func(t *testing.T) {
			p := startPeer(t, bin, kinds)
			f(t, p)
			p.finish()
		})
	}
	run("framing", testFraming)
	run("xeddsa_vectors", testXEdDSAVectors)
	run("x3dh_vectors", testX3DHVectors)
	run("ratchet_vectors", testRatchetVectors)
	run("appendix_a", testAppendixA)
	run("errors", testErrors)
	run("limits", testLimits)
	run("sessions", testSessions)
	t.Run("every_kind", func(t *testing.T) {
		for _, k := range pinnedKinds {
			if kinds[k] == 0 {
				t.Errorf("no request produced %q", k)
			}
		}
		for k := range kinds {
			if !slices.Contains(pinnedKinds, k) {
				t.Errorf("the driver answered the unknown kind %q", k)
			}
		}
	})
	t.Run("raw_stream", func(t *testing.T) { testRawStream(t, bin) })
}

func testFraming(t *testing.T, p *peer) {
	for _, c := range []struct {
		name string
		line string
	}{
		{"not JSON", "this is not json"},
		{"empty line", ""},
		{"only spaces", "   "},
		{"JSON array", "[1,2]"},
		{"JSON null", "null"},
		{"JSON string", `"xeddsa_sign"`},
		{"JSON number", "7"},
		{"trailing garbage", `{"op":"encrypt","id":"x","pt":""} x`},
		{"two objects", `{"op":"encrypt"}{"op":"encrypt"}`},
		{"unknown op", `{"op":"launch_rockets"}`},
		{"op missing", `{"id":"x"}`},
		{"op not a string", `{"op":7}`},
		{"op null", `{"op":null}`},
		{"op of another case", `{"op":"XEDDSA_SIGN","priv":"","msg":"","z":""}`},
		{"uppercase hex", `{"op":"encrypt","id":"nobody","pt":"AB"}`},
		{"odd-length hex", `{"op":"encrypt","id":"nobody","pt":"abc"}`},
		{"hex with a space", `{"op":"encrypt","id":"nobody","pt":"ab cd"}`},
		{"hex as a number", `{"op":"encrypt","id":"nobody","pt":12}`},
		{"id a number", `{"op":"encrypt","id":1,"pt":""}`},
		{"id missing", `{"op":"decrypt","msg":""}`},
		{"bundle an array", `{"op":"x3dh_initiate","ik_priv":"","ek_priv":"","bundle":[]}`},
		{"bundle null", `{"op":"x3dh_initiate","ik_priv":"","ek_priv":"","bundle":null}`},
		{"deep nesting", strings.Repeat("[", 20000)},
	} {
		p.expect(c.name, c.line, errAns("malformed"))
	}
	// Checked after the fields and before anything else (PROTOCOL.md 9.3).
	p.expect("unknown id, encrypt", `{"op":"encrypt","id":"nobody","pt":"00"}`, errAns("unknown_session"))
	p.expect("unknown id, decrypt", `{"op":"decrypt","id":"nobody","msg":""}`, errAns("unknown_session"))
	p.expect("unknown id, bad dh_priv", `{"op":"decrypt","id":"nobody","msg":"","dh_priv":"00"}`, errAns("unknown_session"))
	// A trailing \r is not part of the line; escapes in strings are decoded
	// as JSON says; unknown fields are ignored; duplicate keys take the last.
	p.expect("CRLF", "{\"op\":\"encrypt\",\"id\":\"nobody\",\"pt\":\"\"}\r", errAns("unknown_session"))
	p.expect("escaped hex", `{"op":"encrypt","id":"nobody","pt":"\u0061\u0062"}`, errAns("unknown_session"))
	p.expect("unknown fields", `{"op":"encrypt","id":"nobody","pt":"","colour":[1,{"a":null}]}`, errAns("unknown_session"))
	p.expect("duplicate key", `{"op":"launch","op":"encrypt","id":"nobody","pt":""}`, errAns("unknown_session"))
	p.expect("whitespace around", " \t{ \"op\" : \"encrypt\" , \"id\" : \"nobody\" , \"pt\" : \"\" } ", errAns("unknown_session"))
}

// testRawStream checks what a harness sees of the framing: one answer per
// line (an empty one included), a last line without a newline answered, and
// exit status 0 when stdin ends.
func testRawStream(t *testing.T, bin string) {
	in := "{\"op\":\"xeddsa_verify\"}\n\n{\"op\":\"encrypt\",\"id\":\"x\",\"pt\":\"\"}\r\n{\"op\":\"xeddsa_verify\"}"
	cmd := exec.Command(bin)
	cmd.Stdin = strings.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("driver: %v (stderr %s)", err, stderr.String())
	}
	want := `{"ok":false}` + "\n" + `{"error":"malformed"}` + "\n" + `{"error":"unknown_session"}` + "\n" + `{"ok":false}` + "\n"
	if string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}

type xeddsaVec struct {
	Priv string `json:"priv"`
	Pub  string `json:"pub"`
	Msg  string `json:"msg"`
	Z    string `json:"z"`
	Sig  string `json:"sig"`
}

func testXEdDSAVectors(t *testing.T, p *peer) {
	sign := func(v xeddsaVec) map[string]any {
		return map[string]any{"op": "xeddsa_sign", "priv": v.Priv, "msg": v.Msg, "z": v.Z}
	}
	verify := func(pub, msg, sig string) map[string]any {
		return map[string]any{"op": "xeddsa_verify", "pub": pub, "msg": msg, "sig": sig}
	}
	yes, no := map[string]any{"ok": true}, map[string]any{"ok": false}
	signed, verified := 0, 0

	for _, file := range []string{"xeddsa/kat.json", "xeddsa/ours.json"} {
		var f struct {
			Spec           []xeddsaVec `json:"spec"`
			LibsignalStyle []xeddsaVec `json:"libsignal_style"`
		}
		loadJSON(t, file, &f)
		if len(f.Spec) == 0 || len(f.LibsignalStyle) == 0 {
			t.Fatalf("%s: no vectors", file)
		}
		for i, v := range f.Spec {
			p.expect(file+" sign", sign(v), map[string]any{"sig": v.Sig})
			p.expect(file+" verify", verify(v.Pub, v.Msg, v.Sig), yes)
			signed++
			verified++
			if i == 0 {
				// The same request with another z gives another signature
				// that verifies too.
				w := v
				w.Z = strings.Repeat("5a", 64)
				got := p.call(sign(w))
				sig, _ := got["sig"].(string)
				if sig == "" || sig == v.Sig {
					t.Errorf("%s: signature with another z: %v", file, got)
				}
				p.expect(file+" verify other z", verify(v.Pub, v.Msg, sig), yes)
			}
		}
		// The driver signs the spec's way only; libsignal-style signatures
		// must verify.
		for _, v := range f.LibsignalStyle {
			p.expect(file+" verify libsignal style", verify(v.Pub, v.Msg, v.Sig), yes)
			verified++
		}
	}

	var ls struct {
		Vectors []xeddsaVec `json:"vectors"`
	}
	loadJSON(t, "xeddsa/libsignal.json", &ls)
	for _, v := range ls.Vectors {
		p.expect("libsignal.json", verify(v.Pub, v.Msg, v.Sig), yes)
		verified++
	}
	var kat xeddsaVec
	loadJSON(t, "xeddsa/libsignal_kat.json", &kat)
	p.expect("libsignal_kat.json", verify("05"+kat.Pub, kat.Msg, kat.Sig), yes)
	verified++

	// negative.json keeps raw u-coordinates; the driver takes Encode(PK).
	var neg struct {
		Valid []struct{ Pub, Msg, Sig string } `json:"valid"`
		Flips []struct {
			Valid int    `json:"valid"`
			Field string `json:"field"`
			Bits  int    `json:"bits"`
		} `json:"flips"`
		Cases []struct{ Name, Pub, Msg, Sig string } `json:"cases"`
	}
	loadJSON(t, "xeddsa/negative.json", &neg)
	for _, v := range neg.Valid {
		p.expect("negative.json valid", verify("05"+v.Pub, v.Msg, v.Sig), yes)
		verified++
	}
	flips := 0
	for _, f := range neg.Flips {
		v := neg.Valid[f.Valid]
		fields := map[string]string{"pub": v.Pub, "msg": v.Msg, "sig": v.Sig}
		orig := unhex(t, fields[f.Field])
		if f.Bits != 8*len(orig) {
			t.Fatalf("negative.json flip of %s: %d bits for %d bytes", f.Field, f.Bits, len(orig))
		}
		for bit := range f.Bits {
			b := slices.Clone(orig)
			b[bit/8] ^= 1 << (bit % 8)
			g := map[string]string{"pub": v.Pub, "msg": v.Msg, "sig": v.Sig}
			g[f.Field] = hex.EncodeToString(b)
			if got := p.call(verify("05"+g["pub"], g["msg"], g["sig"])); !sameJSON(got, no) {
				t.Errorf("negative.json: %s bit %d flipped of valid #%d verifies", f.Field, bit, f.Valid)
			}
			flips++
		}
	}
	for _, c := range neg.Cases {
		p.expect("negative.json "+c.Name, verify("05"+c.Pub, c.Msg, c.Sig), no)
	}
	t.Logf("%d signatures made, %d verified, %d flips and %d negative cases rejected",
		signed, verified, flips, len(neg.Cases))
	if flips < 1000 || len(neg.Cases) < 50 {
		t.Errorf("only %d flips and %d cases: negative.json changed shape", flips, len(neg.Cases))
	}

	// Anything unreadable is a signature that does not verify.
	p.expect("verify, nothing given", map[string]any{"op": "xeddsa_verify"}, no)
	p.expect("verify, non-hex", map[string]any{"op": "xeddsa_verify", "pub": "zz", "msg": "", "sig": ""}, no)
	p.expect("verify, raw 32-byte key", verify(kat.Pub, kat.Msg, kat.Sig), no)
	p.expect("verify, numbers", `{"op":"xeddsa_verify","pub":1,"msg":2,"sig":3}`, no)
}

func testX3DHVectors(t *testing.T, p *peer) {
	type party struct {
		IKPriv  string  `json:"ik_priv"`
		IKPub   string  `json:"ik_pub"`
		EKPriv  string  `json:"ek_priv"`
		EKPub   string  `json:"ek_pub"`
		SPKID   uint32  `json:"spk_id"`
		SPKPriv string  `json:"spk_priv"`
		SPKPub  string  `json:"spk_pub"`
		OPKID   *uint32 `json:"opk_id"`
		OPKPriv *string `json:"opk_priv"`
		OPKPub  *string `json:"opk_pub"`
	}
	var f struct {
		DefaultInfo string `json:"default_info"`
		Valid       []struct {
			Name   string `json:"name"`
			Info   string `json:"info"`
			Alice  party  `json:"alice"`
			Bob    party  `json:"bob"`
			SPKSig struct {
				Sig string `json:"sig"`
			} `json:"spk_sig"`
			SK string `json:"sk"`
			AD string `json:"ad"`
		} `json:"valid"`
		Invalid []struct {
			Name   string          `json:"name"`
			Op     string          `json:"op"`
			Info   string          `json:"info"`
			Alice  party           `json:"alice"`
			Bob    party           `json:"bob"`
			Bundle json.RawMessage `json:"bundle"`
			Header struct {
				IK string `json:"ik"`
				EK string `json:"ek"`
			} `json:"header"`
			Error *string `json:"error"`
			SK    string  `json:"sk"`
		} `json:"invalid"`
	}
	loadJSON(t, "x3dh/vectors.json", &f)
	if len(f.Valid) == 0 || len(f.Invalid) == 0 {
		t.Fatal("x3dh/vectors.json: no vectors")
	}
	for _, v := range f.Valid {
		bundle := map[string]any{
			"ik": v.Bob.IKPub, "spk": v.Bob.SPKPub, "spk_id": v.Bob.SPKID,
			"spk_sig": v.SPKSig.Sig, "opk": v.Bob.OPKPub, "opk_id": v.Bob.OPKID,
		}
		want := map[string]any{"sk": v.SK, "ad": v.AD}
		p.expect(v.Name+" initiate", map[string]any{
			"op": "x3dh_initiate", "ik_priv": v.Alice.IKPriv, "ek_priv": v.Alice.EKPriv,
			"bundle": bundle, "info": v.Info,
		}, want)
		p.expect(v.Name+" respond", map[string]any{
			"op": "x3dh_respond", "ik_priv": v.Bob.IKPriv, "spk_priv": v.Bob.SPKPriv,
			"opk_priv": v.Bob.OPKPriv, "peer_ik": v.Alice.IKPub, "peer_ek": v.Alice.EKPub, "info": v.Info,
		}, want)
		if v.Info == hex.EncodeToString([]byte(f.DefaultInfo)) {
			// The default is what an absent, null or empty info selects.
			for _, info := range []any{nil, ""} {
				p.expect(v.Name+" default info", map[string]any{
					"op": "x3dh_respond", "ik_priv": v.Bob.IKPriv, "spk_priv": v.Bob.SPKPriv,
					"opk_priv": v.Bob.OPKPriv, "peer_ik": v.Alice.IKPub, "peer_ek": v.Alice.EKPub, "info": info,
				}, want)
			}
		}
	}
	ran := 0
	for _, c := range f.Invalid {
		switch c.Op {
		case "initiate":
			p.expect(c.Name, map[string]any{
				"op": "x3dh_initiate", "ik_priv": c.Alice.IKPriv, "ek_priv": c.Alice.EKPriv,
				"bundle": c.Bundle, "info": c.Info,
			}, errAns(*c.Error))
			ran++
		case "respond":
			req := map[string]any{
				"op": "x3dh_respond", "ik_priv": c.Bob.IKPriv, "spk_priv": c.Bob.SPKPriv,
				"opk_priv": c.Bob.OPKPriv, "peer_ik": c.Header.IK, "peer_ek": c.Header.EK, "info": c.Info,
			}
			switch {
			case c.Error == nil:
				// A one-time prekey that is not the one Alice used: X3DH
				// cannot tell, and answers a different SK.
				if got := p.call(req); got["sk"] != c.SK {
					t.Errorf("%s: got %v, want sk %s", c.Name, got, c.SK)
				}
				ran++
			case *c.Error == "prekey_mismatch":
				// The driver's x3dh_respond names no prekey ids; ids that
				// do not match are the session layer's unknown_prekey.
			default:
				p.expect(c.Name, req, errAns(*c.Error))
				ran++
			}
		}
	}
	if ran < 50 {
		t.Errorf("only %d invalid cases ran", ran)
	}
}

func testRatchetVectors(t *testing.T, p *peer) {
	var f struct {
		Transcripts []struct {
			Name           string `json:"name"`
			SK             string `json:"sk"`
			AD             string `json:"ad"`
			MaxSkip        uint32 `json:"max_skip"`
			MaxSkippedKeys uint32 `json:"max_skipped_keys"`
			AliceDHPriv    string `json:"alice_dh_priv"`
			BobDHPriv      string `json:"bob_dh_priv"`
			BobDHPub       string `json:"bob_dh_pub"`
			Steps          []struct {
				Party  string  `json:"party"`
				Op     string  `json:"op"`
				Msg    string  `json:"msg"`
				PT     string  `json:"pt"`
				DHPriv *string `json:"dh_priv"`
				Error  *string `json:"error"`
			} `json:"steps"`
		} `json:"transcripts"`
	}
	loadJSON(t, "ratchet/vectors.json", &f)
	steps := 0
	for _, tr := range f.Transcripts {
		limits := map[string]any{"max_skip": tr.MaxSkip, "max_skipped_keys": tr.MaxSkippedKeys}
		ids := map[string]string{"alice": tr.Name + "/alice", "bob": tr.Name + "/bob"}
		init := map[string]any{
			"op": "ratchet_init_alice", "id": ids["alice"], "sk": tr.SK, "ad": tr.AD,
			"peer_dh": "05" + tr.BobDHPub, "dh_priv": tr.AliceDHPriv,
		}
		for k, v := range limits {
			init[k] = v
		}
		p.expect(tr.Name+" init alice", init, map[string]any{})
		init = map[string]any{"op": "ratchet_init_bob", "id": ids["bob"], "sk": tr.SK, "ad": tr.AD, "dh_priv": tr.BobDHPriv}
		for k, v := range limits {
			init[k] = v
		}
		p.expect(tr.Name+" init bob", init, map[string]any{})
		for i, s := range tr.Steps {
			name := fmt.Sprintf("%s step %d %s %s", tr.Name, i, s.Party, s.Op)
			var req, want map[string]any
			switch s.Op {
			case "encrypt":
				req = map[string]any{"op": "encrypt", "id": ids[s.Party], "pt": s.PT}
				want = map[string]any{"msg": s.Msg}
			case "decrypt":
				req = map[string]any{"op": "decrypt", "id": ids[s.Party], "msg": s.Msg, "dh_priv": s.DHPriv}
				want = map[string]any{"pt": s.PT}
			default:
				t.Fatalf("%s: unknown op", name)
			}
			if s.Error != nil {
				want = errAns(*s.Error)
			}
			p.expect(name, req, want)
			steps++
		}
	}
	if steps < 100 {
		t.Errorf("only %d transcript steps", steps)
	}
}

// Appendix A of PROTOCOL.md, computed with Python's cryptography package.
const (
	aIKA     = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	aIKB     = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
	aSPKB    = "1a428c959dc8ac46b504e694e600ce18e7637b56a89af77792adfa8f38fa3edd"
	aOPKB    = "66747c26e3814d6356681ad0a58b0acbcc60b371254d410d4fe49399196d579a"
	aEKA     = "fc9f32de74a2b86a3fb58043fdb09038420c82b75a040853d920591c1e6b0bd9"
	aDHsA    = "eecbeed9319cd32322b27f2773580b6119255c572678cb0c9a2ce0800f5e132d"
	aDHsB    = "1ab50968cff1eb91a8bb10a983d39b779f6ac2a49a55ae008660210fee4d4ca3"
	aIKAPub  = "058520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	aIKBPub  = "05de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	aSPKBPub = "05f5cb3a82006cbe2640317d9e0c2eeab849022974a35fedb4646fae694457b64a"
	aOPKBPub = "05b72f396156afce6b38ef71d4ac644ba10658f2a4a6cb35e9785ac2f7b3317d2e"
	aEKAPub  = "05de656a6528b7c713d387e8c918fa07a3e7cd9f15eaa626af648bf25335d41b0d"
	aSK      = "68e14b67e4ea0268a89b2e268d4c37d0e5465ad0c1d04b303a5509e56b245f1f"
	aAD      = aIKAPub + aIKBPub
	aPT1     = "48656c6c6f2c20426f6221"
	aPT2     = "486920416c696365"
	aMsg1    = "010540a76d488cab900d970f92c5efe80a44185e5990dc0299fbd595b330f49c44050000000000000000" +
		"bebe3fd6325f49d695a168139c5fd356930c32c64b938758cd5c44"
	aPrekey1 = "0201" + aIKAPub + aEKAPub + "00000001" + "00000007" + aMsg1
	aReply   = "0105c7b25c4d75316e15c966a5ba84875a9f1b88dca2f6c5ee9ef3567882104bec3a0000000000000000" +
		"31c59105d6a54de1f3c6e6f2d1c765690cfcba0190862692"
	aSPKID = 1
	aOPKID = 7
	// aSPKSig is XEdDSA-Sign(IK_B, Encode(SPK_B), Z = 0), which Appendix A
	// leaves out; the JavaScript implementation computes the same bytes
	// (driversuite.mjs, "xeddsa_sign: fixed Z").
	aSPKSig = "623628564110facc84247e3c954fb3f72a4496cd1c5f75843e6e2aaaedc57e9d" +
		"733d9070e836005e618287389e618dae5dc048646876ba27b01b4568906afc0b"
)

// aBundle returns Bob's Appendix A bundle, after checking that the driver
// makes its signature and accepts it.
func aBundle(t *testing.T, p *peer) map[string]any {
	t.Helper()
	p.expect("appendix A spk_sig", map[string]any{"op": "xeddsa_sign", "priv": aIKB, "msg": aSPKBPub, "z": strings.Repeat("00", 64)},
		map[string]any{"sig": aSPKSig})
	p.expect("appendix A spk_sig verifies", map[string]any{"op": "xeddsa_verify", "pub": aIKBPub, "msg": aSPKBPub, "sig": aSPKSig},
		map[string]any{"ok": true})
	return map[string]any{"ik": aIKBPub, "spk": aSPKBPub, "spk_id": aSPKID, "spk_sig": aSPKSig, "opk": aOPKBPub, "opk_id": aOPKID}
}

func testAppendixA(t *testing.T, p *peer) {
	bundle := aBundle(t, p)
	p.expect("x3dh_initiate", map[string]any{"op": "x3dh_initiate", "ik_priv": aIKA, "ek_priv": aEKA, "bundle": bundle},
		map[string]any{"sk": aSK, "ad": aAD})
	p.expect("x3dh_respond", map[string]any{"op": "x3dh_respond", "ik_priv": aIKB, "spk_priv": aSPKB, "opk_priv": aOPKB,
		"peer_ik": aIKAPub, "peer_ek": aEKAPub}, map[string]any{"sk": aSK, "ad": aAD})
	p.expect("init alice", map[string]any{"op": "ratchet_init_alice", "id": "a", "sk": aSK, "ad": aAD, "peer_dh": aSPKBPub, "dh_priv": aDHsA}, map[string]any{})
	p.expect("init bob", map[string]any{"op": "ratchet_init_bob", "id": "b", "sk": aSK, "ad": aAD, "dh_priv": aSPKB}, map[string]any{})
	p.expect("first message", map[string]any{"op": "encrypt", "id": "a", "pt": aPT1}, map[string]any{"msg": aMsg1})
	p.expect("Bob decrypts", map[string]any{"op": "decrypt", "id": "b", "msg": aMsg1, "dh_priv": aDHsB}, map[string]any{"pt": aPT1})
	p.expect("Bob replies", map[string]any{"op": "encrypt", "id": "b", "pt": aPT2}, map[string]any{"msg": aReply})
	// Alice's DH step takes a fresh random key: her next message differs
	// from run to run but must still reach Bob.
	p.expect("Alice decrypts", map[string]any{"op": "decrypt", "id": "a", "msg": aReply}, map[string]any{"pt": aPT2})
	got := p.call(map[string]any{"op": "encrypt", "id": "a", "pt": "01"})
	msg, _ := got["msg"].(string)
	if len(msg) != 2*(58+1) || msg[:2] != "01" || msg[2:68] == aMsg1[2:68] {
		t.Errorf("Alice's second message %v: want 59 bytes under a new ratchet key", got)
	}
	p.expect("Bob decrypts the next", map[string]any{"op": "decrypt", "id": "b", "msg": msg}, map[string]any{"pt": "01"})
}

// with returns a copy of m with the given keys set (to nil: sent as null).
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// flipHex flips one bit of a hex string.
func flipHex(t *testing.T, s string, bit int) string {
	b := unhex(t, s)
	b[bit/8] ^= 1 << (bit % 8)
	return hex.EncodeToString(b)
}

// setHex overwrites bytes at off in a hex string.
func setHex(t *testing.T, s string, off int, v string) string {
	b := unhex(t, s)
	copy(b[off:], unhex(t, v))
	return hex.EncodeToString(b)
}

// testErrors walks every error kind the operations can answer without the
// session layer, and the precedence rules of PROTOCOL.md 8.2 and 9.
func testErrors(t *testing.T, p *peer) {
	bundle := aBundle(t, p)
	smallOrder := "05" + strings.Repeat("00", 32)
	uP := "05edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" // u = p
	sig := bundle["spk_sig"].(string)

	// xeddsa_sign: z before priv.
	z := strings.Repeat("00", 64)
	p.expect("sign, z of 63 bytes and a bad priv", map[string]any{"op": "xeddsa_sign", "priv": "00", "msg": "", "z": z[2:]}, errAns("malformed"))
	p.expect("sign, priv of 31 bytes", map[string]any{"op": "xeddsa_sign", "priv": aIKA[2:], "msg": "", "z": z}, errAns("bad_key"))
	p.expect("sign, msg missing", map[string]any{"op": "xeddsa_sign", "priv": aIKA, "z": z}, errAns("malformed"))

	// x3dh_initiate.
	init := map[string]any{"op": "x3dh_initiate", "ik_priv": aIKA, "ek_priv": aEKA, "bundle": bundle}
	noOPK := with(bundle, "opk", nil, "opk_id", nil)
	gotNoOPK := p.call(with(init, "bundle", noOPK))
	if gotNoOPK["sk"] == nil || gotNoOPK["sk"] == aSK {
		t.Errorf("initiate without opk: %v", gotNoOPK)
	}
	delete(noOPK, "opk")
	delete(noOPK, "opk_id")
	p.expect("initiate, opk fields absent = null", with(init, "bundle", noOPK), gotNoOPK)
	p.expect("initiate, bad signature", with(init, "bundle", with(bundle, "spk_sig", flipHex(t, sig, 100))), errAns("invalid_signature"))
	p.expect("initiate, 65-byte signature", with(init, "bundle", with(bundle, "spk_sig", sig+"00")), errAns("invalid_signature"))
	p.expect("initiate, empty signature", with(init, "bundle", with(bundle, "spk_sig", "")), errAns("invalid_signature"))
	p.expect("initiate, undecodable ik before a bad signature", with(init, "bundle", with(bundle, "ik", "06"+aIKBPub[2:], "spk_sig", "00")), errAns("bad_key"))
	p.expect("initiate, small-order ik before a bad signature", with(init, "bundle", with(bundle, "ik", smallOrder, "spk_sig", "00")), errAns("bad_key"))
	p.expect("initiate, spk u = p", with(init, "bundle", with(bundle, "spk", uP)), errAns("bad_key"))
	p.expect("initiate, opk of 32 bytes", with(init, "bundle", with(bundle, "opk", aOPKBPub[2:])), errAns("bad_key"))
	p.expect("initiate, ik_priv of 33 bytes", with(init, "ik_priv", aIKA+"00"), errAns("bad_key"))
	p.expect("initiate, ek_priv empty", with(init, "ek_priv", ""), errAns("bad_key"))
	p.expect("initiate, ek_priv missing", with(init, "ek_priv", nil), errAns("malformed"))
	p.expect("initiate, opk without opk_id", with(init, "bundle", with(bundle, "opk_id", nil)), errAns("malformed"))
	p.expect("initiate, opk_id without opk", with(init, "bundle", with(bundle, "opk", nil)), errAns("malformed"))
	p.expect("initiate, malformed before bad_key", with(init, "ik_priv", "00", "bundle", with(bundle, "spk_id", -1)), errAns("malformed"))
	p.expect("initiate, info not hex", with(init, "info", "xyz"), errAns("malformed"))
	custom := p.call(with(init, "info", "6d79617070"))
	if custom["sk"] == nil || custom["sk"] == aSK || custom["ad"] != aAD {
		t.Errorf("initiate with a custom info: %v", custom)
	}
	p.expect("respond, same custom info", with(map[string]any{"op": "x3dh_respond", "ik_priv": aIKB, "spk_priv": aSPKB,
		"opk_priv": aOPKB, "peer_ik": aIKAPub, "peer_ek": aEKAPub}, "info", "6d79617070"), custom)
	p.expect("initiate, empty info is the default", with(init, "info", ""), map[string]any{"sk": aSK, "ad": aAD})
	for _, id := range []any{7.0, "7e0", 4294967295.0} {
		b := with(bundle, "spk_id", id)
		if s, ok := id.(string); ok {
			b["spk_id"] = json.RawMessage(s)
		}
		p.expect("initiate, spk_id as a JSON integer", with(init, "bundle", b), map[string]any{"sk": aSK, "ad": aAD})
	}
	for _, id := range []any{-1, 1.5, 4294967296.0, "1", true, json.RawMessage("1e400"), json.RawMessage("-0.5")} {
		p.expect("initiate, spk_id not a u32", with(init, "bundle", with(bundle, "spk_id", id)), errAns("malformed"))
	}

	// x3dh_respond.
	resp := map[string]any{"op": "x3dh_respond", "ik_priv": aIKB, "spk_priv": aSPKB, "opk_priv": aOPKB, "peer_ik": aIKAPub, "peer_ek": aEKAPub}
	p.expect("respond, small-order peer_ek", with(resp, "peer_ek", smallOrder), errAns("bad_key"))
	p.expect("respond, peer_ik u = p", with(resp, "peer_ik", uP), errAns("bad_key"))
	p.expect("respond, spk_priv of 31 bytes", with(resp, "spk_priv", aSPKB[2:]), errAns("bad_key"))
	p.expect("respond, opk_priv empty", with(resp, "opk_priv", ""), errAns("bad_key"))
	p.expect("respond, peer_ek missing", with(resp, "peer_ek", nil), errAns("malformed"))

	// Ratchet sessions.
	alice := map[string]any{"op": "ratchet_init_alice", "id": "ea", "sk": aSK, "ad": aAD, "peer_dh": aSPKBPub, "dh_priv": aDHsA}
	bob := map[string]any{"op": "ratchet_init_bob", "id": "eb", "sk": aSK, "ad": aAD, "dh_priv": aSPKB}
	p.expect("init alice", alice, map[string]any{})
	p.expect("init bob", bob, map[string]any{})
	p.expect("init bob, sk of 31 bytes", with(bob, "id", "x", "sk", aSK[2:]), errAns("malformed"))
	p.expect("init bob, sk of 31 bytes and a bad key", with(bob, "id", "x", "sk", aSK[2:], "dh_priv", "00"), errAns("malformed"))
	p.expect("init bob, dh_priv missing", with(bob, "id", "x", "dh_priv", nil), errAns("malformed"))
	p.expect("init bob, dh_priv of 33 bytes", with(bob, "id", "x", "dh_priv", aSPKB+"00"), errAns("bad_key"))
	p.expect("init alice, small-order peer_dh", with(alice, "id", "x", "peer_dh", smallOrder), errAns("bad_key"))
	p.expect("init alice, raw peer_dh", with(alice, "id", "x", "peer_dh", aSPKBPub[2:]), errAns("bad_key"))
	p.expect("init alice, dh_priv of 31 bytes", with(alice, "id", "x", "dh_priv", aDHsA[2:]), errAns("bad_key"))
	p.expect("init alice, id not a string", with(alice, "id", 3), errAns("malformed"))
	p.expect("failed inits leave no session", map[string]any{"op": "encrypt", "id": "x", "pt": ""}, errAns("unknown_session"))

	enc := func(id, pt string) map[string]any { return map[string]any{"op": "encrypt", "id": id, "pt": pt} }
	dec := func(id, msg string, dh any) map[string]any {
		return map[string]any{"op": "decrypt", "id": id, "msg": msg, "dh_priv": dh}
	}
	p.expect("Bob encrypts first", enc("eb", "00"), errAns("no_session"))
	p.expect("empty message", dec("eb", "", nil), errAns("malformed"))
	p.expect("57 bytes", dec("eb", aMsg1[:114], nil), errAns("malformed"))
	p.expect("lone 0x02: length before type", dec("eb", "02", nil), errAns("malformed"))
	p.expect("prekey message to a bare session", dec("eb", aPrekey1, nil), errAns("unknown_type"))
	p.expect("58 bytes of type 0x02", dec("eb", "02"+aMsg1[2:], nil), errAns("unknown_type"))
	p.expect("type 0x00", dec("eb", "00"+aMsg1[2:], nil), errAns("unknown_type"))
	p.expect("header key type 0x06", dec("eb", "0106"+aMsg1[4:], nil), errAns("bad_key"))
	p.expect("header key u = p", dec("eb", "01"+uP+aMsg1[68:], nil), errAns("bad_key"))
	p.expect("PN = 2^32-1", dec("eb", setHex(t, aMsg1, 34, "ffffffff"), nil), errAns("counter_overflow"))
	p.expect("N = 2^32-1", dec("eb", setHex(t, aMsg1, 38, "ffffffff"), nil), errAns("counter_overflow"))
	p.expect("bad key before counter", dec("eb", setHex(t, "0106"+aMsg1[4:], 38, "ffffffff"), nil), errAns("bad_key"))
	p.expect("N = 1001 > MaxSkip", dec("eb", setHex(t, aMsg1, 38, "000003e9"), nil), errAns("too_many_skipped"))
	p.expect("N = 1000 = MaxSkip is within the limit", dec("eb", setHex(t, aMsg1, 38, "000003e8"), nil), errAns("auth_failed"))
	p.expect("PN = 1001 > MaxSkip at the first message", dec("eb", setHex(t, aMsg1, 34, "000003e9"), nil), errAns("too_many_skipped"))
	tail := strings.Repeat("00", 16)
	p.expect("small-order key beyond MaxSkip: limits before DH", dec("eb", "01"+smallOrder+"00000000"+"000003e9"+tail, nil), errAns("too_many_skipped"))
	p.expect("small-order key within the limits", dec("eb", "01"+smallOrder+"00000000"+"00000000"+tail, nil), errAns("bad_key"))
	p.expect("tampered ciphertext", dec("eb", flipHex(t, aMsg1, 8*50), aDHsB), errAns("auth_failed"))
	p.expect("tampered PN", dec("eb", flipHex(t, aMsg1, 8*37), aDHsB), errAns("auth_failed"))
	p.expect("dh_priv of 31 bytes", dec("eb", aMsg1, aDHsB[2:]), errAns("bad_key"))
	p.expect("dh_priv of 31 bytes, message malformed", dec("eb", "", aDHsB[2:]), errAns("bad_key"))
	p.expect("dh_priv not hex", dec("eb", aMsg1, "zz"), errAns("malformed"))
	p.expect("failures changed nothing", dec("eb", aMsg1, aDHsB), map[string]any{"pt": aPT1})
	p.expect("second delivery", dec("eb", aMsg1, aDHsB), errAns("duplicate"))
	p.expect("Bob's reply is Appendix A's", enc("eb", aPT2), map[string]any{"msg": aReply})
	p.expect("Alice's first message", enc("ea", aPT1), map[string]any{"msg": aMsg1})
	m2 := p.call(enc("ea", "02"))["msg"]
	p.expect("Bob: next message, same chain, dh_priv given", dec("eb", m2.(string), strings.Repeat("77", 32)), map[string]any{"pt": "02"})
	if got := p.call(enc("eb", "03")); got["msg"] == nil || got["msg"].(string)[2:68] != aReply[2:68] {
		t.Errorf("dh_priv used without a DH step: Bob's ratchet key changed: %v", got)
	}
	fake := "01" + aSPKBPub + "00001388" + "00001388" + tail
	p.expect("Alice: header key = SPK_B, no receiving chain", dec("ea", fake, nil), errAns("auth_failed"))
	p.expect("Alice decrypts the reply", dec("ea", aReply, strings.Repeat("42", 32)), map[string]any{"pt": aPT2})

	// An id reused by a successful init is replaced; by a failed one, kept.
	p.expect("failed re-init keeps the session", with(bob, "id", "ea", "sk", ""), errAns("malformed"))
	if got := p.call(enc("ea", "00")); got["msg"] == nil {
		t.Errorf("session gone after a failed re-init: %v", got)
	}
	p.expect("re-init replaces", with(bob, "id", "ea"), map[string]any{})
	p.expect("the new session under the id", enc("ea", "00"), errAns("no_session"))
}

// testLimits checks max_skip and max_skipped_keys, their 0 and their bound.
func testLimits(t *testing.T, p *peer) {
	alice := func(id string) map[string]any {
		return map[string]any{"op": "ratchet_init_alice", "id": id, "sk": aSK, "ad": aAD, "peer_dh": aSPKBPub, "dh_priv": aDHsA}
	}
	bob := func(id string, maxSkip, maxKeys any) map[string]any {
		return map[string]any{"op": "ratchet_init_bob", "id": id, "sk": aSK, "ad": aAD, "dh_priv": aSPKB,
			"max_skip": maxSkip, "max_skipped_keys": maxKeys}
	}
	send := func(id string, n int) []string {
		var msgs []string
		for i := range n {
			got := p.call(map[string]any{"op": "encrypt", "id": id, "pt": hex.EncodeToString([]byte{byte(i)})})
			m, _ := got["msg"].(string)
			if m == "" {
				t.Fatalf("encrypt: %v", got)
			}
			msgs = append(msgs, m)
		}
		return msgs
	}
	dec := func(id, msg string) map[string]any {
		return map[string]any{"op": "decrypt", "id": id, "msg": msg, "dh_priv": aDHsB}
	}
	pt := func(i int) map[string]any { return map[string]any{"pt": hex.EncodeToString([]byte{byte(i)})} }

	// max_skip 2, max_skipped_keys 3, as in the JavaScript driver suite.
	p.expect("alice", alice("la"), map[string]any{})
	p.expect("bob 2/3", bob("lb", 2, 3), map[string]any{})
	m := send("la", 8)
	p.expect("N = 3 from Nr = 0", dec("lb", m[3]), errAns("too_many_skipped"))
	p.expect("N = 2 skips 0, 1", dec("lb", m[2]), pt(2))
	p.expect("N = 5 skips 3, 4 and evicts 0", dec("lb", m[5]), pt(5))
	p.expect("evicted key 0", dec("lb", m[0]), errAns("duplicate"))
	p.expect("stored key 1", dec("lb", m[1]), pt(1))
	p.expect("stored key 1 again", dec("lb", m[1]), errAns("duplicate"))
	p.expect("stored key 4", dec("lb", m[4]), pt(4))
	p.expect("N = 7 from Nr = 6", dec("lb", m[7]), pt(7))
	p.expect("stored key 3", dec("lb", m[3]), pt(3))
	p.expect("stored key 6", dec("lb", m[6]), pt(6))

	// 0 means none: no gap at all, and no key kept.
	p.expect("alice 0", alice("za"), map[string]any{})
	p.expect("bob 0/0", bob("zb", 0, 0), map[string]any{})
	m = send("za", 3)
	p.expect("max_skip 0: N = 1 first", dec("zb", m[1]), errAns("too_many_skipped"))
	p.expect("max_skip 0: N = 0", dec("zb", m[0]), pt(0))
	p.expect("max_skip 0: N = 2 after 0", dec("zb", m[2]), errAns("too_many_skipped"))
	p.expect("alice 0b", alice("za2"), map[string]any{})
	p.expect("bob 5/0", bob("zb2", 5, 0), map[string]any{})
	m = send("za2", 3)
	p.expect("max_skipped_keys 0: skip to 2", dec("zb2", m[2]), pt(2))
	p.expect("max_skipped_keys 0: 0 kept no key", dec("zb2", m[0]), errAns("duplicate"))

	// Bounds: integers up to the library's MaxLimit; beyond, malformed.
	p.expect("max_skip 65536", bob("b1", 65536, 65536), map[string]any{})
	p.expect("max_skip 65537", bob("b2", 65537, nil), errAns("malformed"))
	p.expect("max_skipped_keys 2^32-1", bob("b3", nil, 4294967295.0), errAns("malformed"))
	p.expect("max_skip negative", bob("b4", -1, nil), errAns("malformed"))
	p.expect("max_skip fractional", bob("b5", 1.5, nil), errAns("malformed"))
	p.expect("max_skip a string", bob("b6", "2", nil), errAns("malformed"))
	longAD := strings.Repeat("ab", 65535)
	p.expect("ad of 65535 bytes", map[string]any{"op": "ratchet_init_bob", "id": "b7", "sk": aSK, "ad": longAD, "dh_priv": aSPKB}, map[string]any{})
	p.expect("ad of 65536 bytes", map[string]any{"op": "ratchet_init_bob", "id": "b8", "sk": aSK, "ad": longAD + "ab", "dh_priv": aSPKB}, errAns("malformed"))
	p.expect("empty ad", map[string]any{"op": "ratchet_init_bob", "id": "b9", "sk": aSK, "ad": "", "dh_priv": aSPKB}, map[string]any{})
}

// testSessions drives session_initiate and session_respond: Appendix A's
// prekey message and reply byte for byte, the responder's routing by EK_A,
// its field checks, trust on first use, unknown prekeys, one-time prekeys
// kept after failures, several sessions and promotion, and the kinds only
// the session layer has.
func testSessions(t *testing.T, p *peer) {
	bundle := aBundle(t, p)
	respond := map[string]any{"op": "session_respond", "id": "bob", "ik_priv": aIKB,
		"spk": map[string]any{"id": aSPKID, "priv": aSPKB}, "opks": []any{map[string]any{"id": aOPKID, "priv": aOPKB}}}
	initiate := map[string]any{"op": "session_initiate", "id": "alice", "ik_priv": aIKA, "ek_priv": aEKA, "dh_priv": aDHsA, "bundle": bundle}
	enc := func(id, pt string) map[string]any { return map[string]any{"op": "encrypt", "id": id, "pt": pt} }
	dec := func(id, msg string, dh any) map[string]any {
		return map[string]any{"op": "decrypt", "id": id, "msg": msg, "dh_priv": dh}
	}
	msgOf := func(req map[string]any) string {
		t.Helper()
		got := p.call(req)
		m, _ := got["msg"].(string)
		if m == "" {
			t.Fatalf("%v: %v", req, got)
		}
		return m
	}

	// Requests that make no session.
	p.expect("respond, duplicate opk ids", with(respond, "id", "x", "opks", []any{
		map[string]any{"id": 1, "priv": aOPKB}, map[string]any{"id": 1, "priv": aSPKB}}), errAns("malformed"))
	p.expect("respond, duplicate opk ids before a bad key", with(respond, "id", "x", "ik_priv", "00", "opks", []any{
		map[string]any{"id": 1, "priv": aOPKB}, map[string]any{"id": 1, "priv": aSPKB}}), errAns("malformed"))
	p.expect("respond, spk missing", with(respond, "id", "x", "spk", nil), errAns("malformed"))
	p.expect("respond, spk id missing", with(respond, "id", "x", "spk", map[string]any{"priv": aSPKB}), errAns("malformed"))
	p.expect("respond, opks an object", with(respond, "id", "x", "opks", map[string]any{}), errAns("malformed"))
	p.expect("respond, an opk not an object", with(respond, "id", "x", "opks", []any{"00"}), errAns("malformed"))
	p.expect("respond, spk priv of 31 bytes", with(respond, "id", "x", "spk", map[string]any{"id": 1, "priv": aSPKB[2:]}), errAns("bad_key"))
	p.expect("respond, opk priv empty", with(respond, "id", "x", "opks", []any{map[string]any{"id": 1, "priv": ""}}), errAns("bad_key"))
	p.expect("initiate, bad signature", with(initiate, "id", "x", "bundle", with(bundle, "spk_sig", flipHex(t, bundle["spk_sig"].(string), 3))), errAns("invalid_signature"))
	p.expect("initiate, ek_priv of 31 bytes", with(initiate, "id", "x", "ek_priv", aEKA[2:]), errAns("bad_key"))
	p.expect("initiate, dh_priv of 31 bytes", with(initiate, "id", "x", "dh_priv", aDHsA[2:]), errAns("bad_key"))
	p.expect("initiate, small-order spk", with(initiate, "id", "x", "bundle", with(bundle, "spk", "05"+strings.Repeat("00", 32))), errAns("bad_key"))
	p.expect("initiate, bundle missing", with(initiate, "id", "x", "bundle", nil), errAns("malformed"))
	p.expect("failed requests made no session", enc("x", "00"), errAns("unknown_session"))

	p.expect("session_respond", respond, map[string]any{})
	p.expect("session_initiate", initiate, map[string]any{})
	p.expect("responder encrypts before any session", enc("bob", aPT2), errAns("no_session"))
	p.expect("responder gets a ratchet message first", dec("bob", aMsg1, nil), errAns("no_session"))
	p.expect("parse errors before no_session", dec("bob", setHex(t, aMsg1, 38, "ffffffff"), nil), errAns("counter_overflow"))
	p.expect("truncated message first", dec("bob", aMsg1[:40], nil), errAns("malformed"))
	p.expect("first message is Appendix A's prekey message", enc("alice", aPT1), map[string]any{"msg": aPrekey1})

	pk := aPrekey1
	p.expect("flags 0x02", dec("bob", "0202"+pk[4:], nil), errAns("malformed"))
	p.expect("prekey message of 133 bytes", dec("bob", pk[:266], nil), errAns("malformed"))
	p.expect("inner type 0x02", dec("bob", pk[:152]+"02"+pk[154:], nil), errAns("malformed"))
	p.expect("IK_A type 0x06", dec("bob", pk[:4]+"06"+pk[6:], nil), errAns("bad_key"))
	p.expect("EK_A u = p", dec("bob", pk[:70]+"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"+pk[134:], nil), errAns("bad_key"))
	p.expect("type 0x03", dec("bob", "03"+pk[2:], nil), errAns("unknown_type"))
	wrongSPK := setHex(t, pk, 68, "00000002")
	p.expect("unknown spk_id", dec("bob", wrongSPK, nil), errAns("unknown_prekey"))
	p.expect("unknown opk_id", dec("bob", setHex(t, pk, 72, "00000008"), nil), errAns("unknown_prekey"))
	p.expect("tampered prekey message", dec("bob", flipHex(t, pk, 8*130), aDHsB), errAns("auth_failed"))
	p.expect("initiator given a prekey message", dec("alice", pk, nil), errAns("no_session"))
	p.expect("initiator given a malformed prekey message", dec("alice", "0202"+pk[4:], nil), errAns("no_session"))
	p.expect("initiator given 57 bytes", dec("alice", pk[:114], nil), errAns("malformed"))
	p.expect("the one-time prekey survived the failures", dec("bob", pk, aDHsB), map[string]any{"pt": aPT1})
	p.expect("same prekey message again", dec("bob", pk, aDHsB), errAns("duplicate"))
	p.expect("same EK_A, other spk_id", dec("bob", wrongSPK, nil), errAns("malformed"))
	p.expect("same EK_A, other IK_A", dec("bob", pk[:4]+flipHex(t, pk[4:70], 8), nil), errAns("malformed"))
	p.expect("the reply is Appendix A's", enc("bob", aPT2), map[string]any{"msg": aReply})
	second := msgOf(enc("alice", "02"))
	if second[:4] != "0201" || second[4:138] != pk[4:138] {
		t.Errorf("second message before the reply is not a prekey message with the same fields: %s", second[:140])
	}
	p.expect("initiator decrypts the reply", dec("alice", aReply, strings.Repeat("43", 32)), map[string]any{"pt": aPT2})
	if m := msgOf(enc("alice", "04")); m[:2] != "01" {
		t.Errorf("after a reply the initiator sends %s…, want a ratchet message", m[:4])
	}
	p.expect("a late prekey message still decrypts", dec("bob", second, nil), map[string]any{"pt": "02"})

	// A second initiator with another identity key: refused after the first
	// session made Bob trust Alice's.
	p.expect("other identity", with(initiate, "id", "mallory", "ik_priv", strings.Repeat("99", 32), "ek_priv", strings.Repeat("98", 32),
		"bundle", with(bundle, "opk", nil, "opk_id", nil)), map[string]any{})
	p.expect("new identity key is untrusted", dec("bob", msgOf(enc("mallory", "05")), nil), errAns("untrusted_identity"))
	p.expect("untrusted before unknown prekey", dec("bob", setHex(t, msgOf(enc("mallory", "06")), 68, "00000009"), nil), errAns("untrusted_identity"))

	// Two sessions from one identity; replies go to the current one, and a
	// message of the other promotes it.
	p.expect("bob2", with(respond, "id", "bob2", "opks", nil), map[string]any{})
	noOPK := with(bundle, "opk", nil, "opk_id", nil)
	p.expect("a1", with(initiate, "id", "a1", "ek_priv", strings.Repeat("21", 32), "dh_priv", strings.Repeat("22", 32), "bundle", noOPK), map[string]any{})
	p.expect("a2", with(initiate, "id", "a2", "ek_priv", strings.Repeat("23", 32), "dh_priv", strings.Repeat("24", 32), "bundle", noOPK), map[string]any{})
	p.expect("first session", dec("bob2", msgOf(enc("a1", "a1")), strings.Repeat("31", 32)), map[string]any{"pt": "a1"})
	p.expect("second session", dec("bob2", msgOf(enc("a2", "a2")), strings.Repeat("32", 32)), map[string]any{"pt": "a2"})
	r2 := msgOf(enc("bob2", "b2"))
	p.expect("the older session cannot read the reply", dec("a1", r2, nil), errAns("auth_failed"))
	p.expect("the newest session can", dec("a2", r2, nil), map[string]any{"pt": "b2"})
	p.expect("a prekey message of the older session", dec("bob2", msgOf(enc("a1", "a3")), nil), map[string]any{"pt": "a3"})
	r1 := msgOf(enc("bob2", "b3"))
	p.expect("the promoted session replied", dec("a1", r1, nil), map[string]any{"pt": "b3"})
	p.expect("a ratchet message of the other session", dec("bob2", msgOf(enc("a2", "a4")), nil), map[string]any{"pt": "a4"})
	p.expect("promoted again", dec("a2", msgOf(enc("bob2", "b4")), nil), map[string]any{"pt": "b4"})
	p.expect("no session decrypts: the current session's error", dec("bob2", flipHex(t, msgOf(enc("a1", "a5")), 8*45), nil), errAns("auth_failed"))

	// Keys drawn at random when none is injected; a custom info on both
	// sides; a mismatched one fails.
	p.expect("random keys", with(initiate, "id", "r", "ek_priv", nil, "dh_priv", nil, "info", "6d79", "bundle", noOPK), map[string]any{})
	p.expect("bob3", with(respond, "id", "bob3", "info", "6d79"), map[string]any{})
	p.expect("bob4", with(respond, "id", "bob4", "info", "6d7a"), map[string]any{})
	m := msgOf(enc("r", "07"))
	p.expect("custom info", dec("bob3", m, nil), map[string]any{"pt": "07"})
	p.expect("other info", dec("bob4", m, nil), errAns("auth_failed"))
}
