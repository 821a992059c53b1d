package session

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

var update = flag.Bool("update", false, "create missing golden files under ../testdata/session")

const goldenDir = "../testdata/session/record"

// golden is the manifest of the version 1 golden records.
type golden struct {
	Description string `json:"description"`
	// Alice and Bob are records from makeFixture.
	Alice hexBytes `json:"alice"`
	Bob   hexBytes `json:"bob"`
	// Late is a message Bob's record must decrypt to LatePlaintext.
	Late          hexBytes `json:"late"`
	LatePlaintext string   `json:"late_plaintext"`
}

type hexBytes = testutil.Hex

func loadGolden(t testing.TB) *golden {
	t.Helper()
	path := filepath.Join(goldenDir, "v1.json")
	if *update {
		writeManifest(t, path, func() any {
			f := makeFixture(t)
			return &golden{
				Description: "session record version 1: alice holds two initiator sessions (the older answered, the newer current); " +
					"bob holds two responder sessions (the older current, with skipped keys); bob's decrypts late",
				Alice: f.aliceRecord, Bob: f.bobRecord, Late: f.late, LatePlaintext: "two",
			}
		})
	}
	var g golden
	readManifest(t, path, &g)
	return &g
}

// readManifest reads the JSON golden manifest at path into v.
func readManifest(t testing.TB, path string, v any) {
	t.Helper()
	j, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, v); err != nil {
		t.Fatal(err)
	}
}

// writeManifest creates the golden manifest at path from make's result,
// once: a released version's file is never rewritten.
func writeManifest(t testing.TB, path string, make func() any) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return
	}
	j, _ := json.MarshalIndent(make(), "", " ")
	if err := os.WriteFile(path, append(j, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func parseRecord(b []byte) (*record, error) {
	r := new(record)
	return r, r.parse(b)
}

func TestGoldenRecord(t *testing.T) {
	g := loadGolden(t)
	for name, rec := range map[string][]byte{"alice": g.Alice, "bob": g.Bob} {
		t.Run(name, func(t *testing.T) {
			r, err := parseRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.appendBinary(nil)
			if err != nil || !bytes.Equal(out, rec) {
				t.Fatalf("golden record does not re-marshal to itself: %v", err)
			}
			if r.n != 2 {
				t.Fatalf("%d sessions, want 2", r.n)
			}
		})
	}
	// The layout, read with offsets written here: magic, version, current
	// and count, then the first entry's role.
	if string(g.Bob[:4]) != "rkss" || g.Bob[4] != 1 || g.Bob[5] != 1 || g.Bob[6] != 2 || g.Bob[7] != 2 {
		t.Errorf("bob's record header %x", g.Bob[:8])
	}
	if g.Alice[5] != 0 || g.Alice[6] != 2 || g.Alice[7] != 1 {
		t.Errorf("alice's record header %x", g.Alice[:8])
	}

	// Bob's stored record still reads Alice's late message.
	readLate(t, nil, g.Bob, g.Late, g.LatePlaintext)
}

// readLate saves rec as Bob's record with Alice in a new memory store and
// checks that a Manager with cfg decrypts late from Alice to want. It
// returns the store and the Manager.
func readLate(t *testing.T, cfg *Config, rec, late []byte, want string) (store.Store, *Manager) {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	m, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	alice := store.Address{Name: "alice", DeviceID: 1}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, alice, rec) }); err != nil {
		t.Fatal(err)
	}
	pt, err := m.Decrypt(ctx, alice, late)
	if err != nil || string(pt) != want {
		t.Fatalf("late message: %q, %v", pt, err)
	}
	return st, m
}

// TestRecordReproducible pins the writer: the fixture, made again, gives
// the golden bytes. It fails when the record or the ratchet state layout
// changes; that is a new version, with golden files of its own.
func TestRecordReproducible(t *testing.T) {
	g := loadGolden(t)
	f := makeFixture(t)
	if !bytes.Equal(f.aliceRecord, g.Alice) || !bytes.Equal(f.bobRecord, g.Bob) || !bytes.Equal(f.late, g.Late) {
		t.Fatal("the fixture no longer reproduces the golden records")
	}
}

// TestRecordStrict: every truncation, trailing byte and broken field is
// refused; a record that parses re-marshals to itself.
func TestRecordStrict(t *testing.T) {
	g := loadGolden(t)
	for _, rec := range [][]byte{g.Alice, g.Bob} {
		for i := range len(rec) {
			if _, err := parseRecord(rec[:i]); err == nil {
				t.Fatalf("truncated to %d bytes: parsed", i)
			}
		}
		if _, err := parseRecord(append(bytes.Clone(rec), 0)); err == nil {
			t.Fatal("trailing byte: parsed")
		}
	}

	// Offsets in Bob's record, from the layout: the header is 7 bytes,
	// then role (1), peer identity (33), x3dh header (71 or 75, flags
	// first), state length (3), state.
	rec := g.Bob
	const e0 = 7
	flags0 := rec[e0+34]
	hdrLen := 71
	if flags0 == 1 {
		hdrLen = 75
	}
	stateLen := int(rec[e0+34+hdrLen])<<16 | int(rec[e0+34+hdrLen+1])<<8 | int(rec[e0+34+hdrLen+2])
	e1 := e0 + 34 + hdrLen + 3 + stateLen
	set := func(off int, v byte) []byte { b := bytes.Clone(rec); b[off] = v; return b }
	for _, c := range []struct {
		name string
		rec  []byte
	}{
		{"magic", set(0, 'x')},
		{"version 0", set(4, 0)},
		{"version 2", set(4, 2)},
		{"current = count", set(5, 2)},
		{"count 0", set(6, 0)},
		{"count 1, trailing entry", set(6, 1)},
		{"count 3", set(6, 3)},
		{"count 42", set(6, 42)},
		{"role 0", set(e0, 0)},
		{"role 3", set(e0, 3)},
		{"initiator with a responder's data", set(e0, 1)}, // stays consistent? see below
		{"peer key type", set(e0+1, 6)},
		{"peer key bit 255", set(e0+33, rec[e0+33]|0x80)},
		{"peer key differs from IK_A", set(e0+2, rec[e0+2]^1)},
		{"header flags 2", set(e0+34, 2)},
		{"header flags toggled", set(e0+34, flags0^1)},
		{"IK_A type", set(e0+35, 6)},
		{"EK_A type", set(e0+68, 6)},
		{"state length +1", set(e0+34+hdrLen+2, rec[e0+34+hdrLen+2]+1)},
		{"state length 0", append(append(bytes.Clone(rec[:e0+34+hdrLen]), 0, 0, 0), rec[e0+34+hdrLen+3:]...)},
		{"state magic", set(e0+34+hdrLen+3, 'x')},
		{"second role", set(e1, 9)},
		{"two sessions with one EK_A", append(append(bytes.Clone(rec[:7]), rec[e0:e1]...), rec[e0:e1]...)},
	} {
		_, err := parseRecord(c.rec)
		if c.name == "initiator with a responder's data" {
			// An initiator entry has no constraint a responder's data
			// breaks; it must at least round-trip.
			if err == nil {
				r, _ := parseRecord(c.rec)
				if out, _ := r.appendBinary(nil); !bytes.Equal(out, c.rec) {
					t.Errorf("%s: parsed but does not re-marshal", c.name)
				}
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", c.name, err)
		}
	}

	// Random bit flips: refused, or parsed and re-marshaled identically.
	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		b := bytes.Clone(rec)
		i := rng.IntN(len(b))
		b[i] ^= 1 << rng.IntN(8)
		r, err := parseRecord(b)
		if err != nil {
			continue
		}
		if out, err := r.appendBinary(nil); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("flip at %d parsed but re-marshaled differently", i)
		}
	}
}

// TestRecordLimits: 41 sessions at most, the oldest-created dropped
// first, never the current one, and MaxArchived obeyed.
func TestRecordLimits(t *testing.T) {
	g := loadGolden(t)
	base, err := parseRecord(g.Bob)
	if err != nil {
		t.Fatal(err)
	}
	// Sessions are told apart by their EK_A; make distinct ones.
	mk := func(i int) *entry {
		e := base.entries[0]
		e.hdr[hdrEK+1] = byte(i)
		e.hdr[hdrEK+2] = byte(i >> 8)
		e.sess, _ = ratchet.ParseSession(must(t)(base.entries[0].sess.MarshalBinary()))
		return &e
	}
	r := new(record)
	for i := range 50 {
		r.add(mk(i), DefaultMaxArchived)
		if r.current != 0 || r.n != min(i+1, maxSessions) {
			t.Fatalf("after %d adds: %d sessions, current %d", i+1, r.n, r.current)
		}
	}
	if r.entries[0].hdr[hdrEK+1] != 49 || r.entries[40].hdr[hdrEK+1] != 9 {
		t.Fatal("not the 41 newest, newest first")
	}
	out, err := r.appendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseRecord(out); err != nil {
		t.Fatalf("41 sessions: %v", err)
	}
	// A promoted oldest session survives trimming.
	r.current = 40
	r.trim(2)
	if r.n != 3 || r.current != 2 || r.entries[2].hdr[hdrEK+1] != 9 || r.entries[0].hdr[hdrEK+1] != 49 {
		t.Fatalf("trim(2) with the oldest current: %d sessions, current %d", r.n, r.current)
	}
	r.add(mk(60), 2)
	if r.n != 3 || r.current != 0 || r.entries[1].hdr[hdrEK+1] != 49 || r.entries[2].hdr[hdrEK+1] != 48 {
		t.Fatalf("add after trim: %d sessions", r.n)
	}
	r.add(mk(61), 0)
	if r.n != 1 {
		t.Fatalf("MaxArchived 0: %d sessions", r.n)
	}
}

// TestRecordSecretsStayOut: errors about records never contain their
// bytes.
func TestRecordSecretsStayOut(t *testing.T) {
	g := loadGolden(t)
	b := bytes.Clone(g.Bob)
	b[len(b)-1] ^= 0xff // inside the last state's skipped keys or counters
	for i := 8; i < len(b); i += 97 {
		c := bytes.Clone(b)
		c[i] ^= 0x55
		if _, err := parseRecord(c); err != nil {
			msg := err.Error()
			for j := 0; j+8 <= len(c); j += 8 {
				if bytes.Contains([]byte(msg), []byte(hex.EncodeToString(c[j:j+8]))) {
					t.Fatalf("error %q contains record bytes", msg)
				}
			}
		}
	}
}

// TestSignalRecordArchiveOrder: a Signal record keeps libsignal's
// archive order, the state that stopped being current most recently
// first. A promoted state leaves the archive and the one it replaces goes
// to its front; the cap drops the state archived longest, so a promoted
// oldest session survives the next one (the old rule, oldest created
// first, dropped it). A record in creation order with the current entry
// elsewhere (as Go wrote them before) is read by the same rule.
func TestSignalRecordArchiveOrder(t *testing.T) {
	g := loadGoldenSignal(t)
	base, err := parseRecord(g.Bob)
	if err != nil {
		t.Fatal(err)
	}
	// Sessions are told apart by their base key.
	mk := func(i int) *entry {
		e := base.entries[0]
		e.sig.baseKey[1], e.sig.baseKey[2] = byte(i), byte(i>>8)
		e.sess, _ = ratchet.ParseSession(must(t)(base.entries[0].sess.MarshalBinary()))
		return &e
	}
	id := func(e *entry) int { return int(e.sig.baseKey[1]) | int(e.sig.baseKey[2])<<8 }
	order := func(r *record) []int {
		ids := []int{id(&r.entries[r.current])}
		for i := range r.n {
			if i != r.current {
				ids = append(ids, id(&r.entries[i]))
			}
		}
		return ids
	}
	seq := func(first int, rest ...int) []int { return append([]int{first}, rest...) }
	down := func(from, to int) []int { // from, from-1, ..., to
		var s []int
		for i := from; i >= to; i-- {
			s = append(s, i)
		}
		return s
	}
	check := func(r *record, what string, want []int) {
		t.Helper()
		if got := order(r); !slices.Equal(got, want) {
			t.Fatalf("%s: current then archive %v, want %v", what, got, want)
		}
		out, err := r.appendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseRecord(out)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := order(back); !slices.Equal(got, want) || back.current != 0 {
			t.Fatalf("%s: parsed back as %v, current %d", what, got, back.current)
		}
	}

	r := &record{proto: ratchet.Signal}
	for i := range maxSessions {
		r.add(mk(i), DefaultMaxArchived)
	}
	check(r, "41 sessions", down(40, 0))
	r.makeCurrent(r.n - 1) // the oldest decrypts a message
	check(r, "the oldest promoted", seq(0, down(40, 1)...))
	r.add(mk(41), DefaultMaxArchived)
	check(r, "a new session", seq(41, append([]int{0}, down(40, 2)...)...))
	r.makeCurrent(5) // session 37, fifth in the archive
	check(r, "an archived state promoted", seq(37, append([]int{41, 0}, append(down(40, 38), down(36, 2)...)...)...))
	r.makeCurrent(0)
	check(r, "the current decrypts", seq(37, append([]int{41, 0}, append(down(40, 38), down(36, 2)...)...)...))
	r.add(mk(42), 3)
	check(r, "MaxArchived 3", []int{42, 37, 41, 0})

	// A record Go wrote in creation order, newest first, the current one
	// in the middle: the others are its archive, in list order.
	oldRecord := func(current int) *record {
		r := &record{proto: ratchet.Signal}
		for i := range 5 {
			r.add(mk(i), DefaultMaxArchived)
		}
		r.current = current // [4 3 2 1 0]
		return r
	}
	old := oldRecord(2)
	if order(old)[0] != 2 || !slices.Equal(order(old), []int{2, 4, 3, 1, 0}) {
		t.Fatalf("an old record reads as %v", order(old))
	}
	old.makeCurrent(4)
	check(old, "an old record, the oldest promoted", []int{0, 2, 4, 3, 1})
	old = oldRecord(3)
	old.add(mk(5), 3)
	check(old, "an old record takes a new session", []int{5, 1, 4, 3})
}
