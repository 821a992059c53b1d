package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The field sets a successful answer may have (PROTOCOL.md 9.2), keys
// sorted.
var answerShapes = []string{"", "sig", "ok", "ad,sk", "msg", "pt"}

// checkAnswer asserts what every answer must be, whatever the line: one
// JSON object on one line, either a pinned error kind alone or the fields
// of one operation's success, and no internal error reported.
func checkAnswer(t testing.TB, line, out []byte, log *bytes.Buffer) {
	t.Helper()
	if bytes.IndexByte(out, '\n') >= 0 {
		t.Fatalf("answer to %q spans lines: %q", line, out)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil || m == nil {
		t.Fatalf("answer to %q is not a JSON object: %q", line, out)
	}
	if log.Len() != 0 {
		t.Fatalf("internal error on %q: %s", line, log.String())
	}
	if raw, ok := m["error"]; ok {
		var k string
		if json.Unmarshal(raw, &k) != nil || !slices.Contains(pinnedKinds, k) || len(m) != 1 {
			t.Fatalf("answer to %q: %s", line, out)
		}
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Contains(answerShapes, strings.Join(keys, ",")) {
		t.Fatalf("answer to %q has fields %v", line, keys)
	}
}

// runLines feeds lines to a fresh driver and checks every answer.
func runLines(t testing.TB, lines [][]byte) (errors map[string]int) {
	t.Helper()
	var log bytes.Buffer
	d := newDriver(&log)
	errors = make(map[string]int)
	for _, line := range lines {
		out := d.handleLine(line)
		checkAnswer(t, line, out, &log)
		var m map[string]string
		if json.Unmarshal(out, &m) == nil && m["error"] != "" {
			errors[m["error"]]++
		} else {
			errors[""]++
		}
	}
	return errors
}

// FuzzHandleLine runs a script of up to 32 lines through one driver, so
// that mutations reach the operations that depend on earlier ones
// (decrypt after init). The seed corpus in testdata/fuzz/FuzzHandleLine
// holds the Appendix A exchange and requests of every operation.
func FuzzHandleLine(f *testing.F) {
	for _, s := range seedScripts() {
		f.Add([]byte(strings.Join(s, "\n")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.SplitN(data, []byte("\n"), 32)
		runLines(t, lines)
	})
}

// seedScripts are request scripts built from PROTOCOL.md's Appendix A.
func seedScripts() [][]string {
	j := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	sig := "fe79e3e1c1c0ef54b1f4b6e2b1f4c1bd3cdb05d1f5c4a1b5e8c0d2e4b0a7d4cc" // not a valid signature
	bundle := map[string]any{"ik": aIKBPub, "spk": aSPKBPub, "spk_id": aSPKID, "spk_sig": sig + sig, "opk": aOPKBPub, "opk_id": aOPKID}
	return [][]string{
		{
			j(map[string]any{"op": "ratchet_init_alice", "id": "a", "sk": aSK, "ad": aAD, "peer_dh": aSPKBPub, "dh_priv": aDHsA}),
			j(map[string]any{"op": "ratchet_init_bob", "id": "b", "sk": aSK, "ad": aAD, "dh_priv": aSPKB, "max_skip": 3, "max_skipped_keys": 2}),
			j(map[string]any{"op": "encrypt", "id": "a", "pt": aPT1}),
			j(map[string]any{"op": "decrypt", "id": "b", "msg": aMsg1, "dh_priv": aDHsB}),
			j(map[string]any{"op": "encrypt", "id": "b", "pt": aPT2}),
			j(map[string]any{"op": "decrypt", "id": "a", "msg": aReply}),
			j(map[string]any{"op": "decrypt", "id": "b", "msg": aPrekey1}),
		},
		{
			j(map[string]any{"op": "xeddsa_sign", "priv": aIKB, "msg": aSPKBPub, "z": strings.Repeat("00", 64)}),
			j(map[string]any{"op": "xeddsa_verify", "pub": aIKBPub, "msg": aSPKBPub, "sig": sig + sig}),
		},
		{
			j(map[string]any{"op": "x3dh_initiate", "ik_priv": aIKA, "ek_priv": aEKA, "bundle": bundle, "info": "00"}),
			j(map[string]any{"op": "x3dh_respond", "ik_priv": aIKB, "spk_priv": aSPKB, "opk_priv": aOPKB, "peer_ik": aIKAPub, "peer_ek": aEKAPub}),
		},
		{
			j(map[string]any{"op": "session_respond", "id": "b", "ik_priv": aIKB, "spk": map[string]any{"id": aSPKID, "priv": aSPKB},
				"opks": []any{map[string]any{"id": aOPKID, "priv": aOPKB}, map[string]any{"id": 8, "priv": aEKA}}}),
			j(map[string]any{"op": "session_initiate", "id": "a", "ik_priv": aIKA, "ek_priv": aEKA, "dh_priv": aDHsA,
				"bundle": map[string]any{"ik": aIKBPub, "spk": aSPKBPub, "spk_id": aSPKID, "spk_sig": aSPKSig, "opk": aOPKBPub, "opk_id": aOPKID}}),
			j(map[string]any{"op": "encrypt", "id": "a", "pt": aPT1}),
			j(map[string]any{"op": "decrypt", "id": "b", "msg": aPrekey1, "dh_priv": aDHsB}),
			j(map[string]any{"op": "encrypt", "id": "b", "pt": aPT2}),
			j(map[string]any{"op": "decrypt", "id": "a", "msg": aReply}),
			j(map[string]any{"op": "decrypt", "id": "b", "msg": aMsg1}),
		},
		{"not json", "[]", "null", "", "{\"op\":\"decrypt\",\"id\":\"\",\"msg\":\"01\"}\r", `{"op":"encrypt","id":1e400}`},
	}
}

// TestRandomRequests throws seeded variations of valid requests at the
// driver in-process: fields dropped, replaced by JSON values of every
// type, hex bit-flipped or truncated, lines cut or corrupted. Every answer
// must be well formed, and the variations must reach both successes and
// many error kinds (so the test is not just feeding the JSON parser).
func TestRandomRequests(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var templates []map[string]any
	for _, script := range seedScripts()[:4] {
		for _, line := range script {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			templates = append(templates, m)
		}
	}
	values := []any{
		nil, true, false, 0, -1, 1.5, 7.0, 4294967295.0, 4294967296.0, json.RawMessage("1e400"),
		"", "zz", "AB", "0", "05", strings.Repeat("ff", 33), strings.Repeat("00", 32),
		[]any{}, map[string]any{}, []any{map[string]any{"id": 1, "priv": ""}},
		"a", "b", "nobody", strings.Repeat("7", 200),
	}
	var lines [][]byte
	for range n {
		req := make(map[string]any)
		for k, v := range templates[rng.IntN(len(templates))] {
			req[k] = v
		}
		fields := make([]string, 0, len(req))
		for k := range req {
			fields = append(fields, k)
		}
		sort.Strings(fields)
		for range 1 + rng.IntN(2) {
			f := fields[rng.IntN(len(fields))]
			switch r := rng.IntN(10); {
			case r == 0:
				// unchanged
			case r == 1:
				delete(req, f)
			case r <= 4:
				req[f] = values[rng.IntN(len(values))]
			case r <= 7:
				if s, ok := req[f].(string); ok && len(s) > 0 {
					b, err := hex.DecodeString(s)
					if err == nil && len(b) > 0 {
						b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
						req[f] = hex.EncodeToString(b)
					}
				}
			default:
				if s, ok := req[f].(string); ok && len(s) >= 2 {
					req[f] = s[:2*rng.IntN(len(s)/2)]
				}
			}
		}
		line, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if rng.IntN(8) == 0 {
			line = slices.Clone(line)
			switch rng.IntN(3) {
			case 0:
				line = line[:rng.IntN(len(line))]
			case 1:
				line[rng.IntN(len(line))] = byte(rng.IntN(256))
			default:
				i := rng.IntN(len(line))
				line = slices.Insert(line, i, byte(rng.IntN(256)))
			}
			line = bytes.ReplaceAll(line, []byte("\n"), nil)
		}
		lines = append(lines, line)
	}
	got := runLines(t, lines)
	t.Logf("%d requests: %v", n, got)
	if got[""] < n/20 {
		t.Errorf("only %d of %d requests succeeded", got[""], n)
	}
	if len(got) < 8 {
		t.Errorf("only %d different answers (%v): the variations do not reach the operations", len(got), got)
	}
}
