package session

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// goldenSignal is the manifest of the version 2 golden records: made once
// by a conversation between two Signal Managers (PQXDH draws from
// crypto/rand, so the bytes cannot be made again; they are checked by
// parsing, re-marshaling and decrypting).
type goldenSignal struct {
	Description string `json:"description"`
	// Alice holds an answered initiator session and a newer, pending one
	// (current); Bob a responder session with a one-time prekey.
	Alice hexBytes `json:"alice"`
	Bob   hexBytes `json:"bob"`
	// Late is a PreKeySignalMessage Bob's record continues (no Kyber
	// prekey needed), decrypting to LatePlaintext.
	Late          hexBytes `json:"late"`
	LatePlaintext string   `json:"late_plaintext"`
}

func loadGoldenSignal(t testing.TB) *goldenSignal {
	t.Helper()
	path := filepath.Join(goldenDir, "v2-signal.json")
	if *update {
		writeManifest(t, path, func() any { return makeSignalGolden(t) })
	}
	var g goldenSignal
	readManifest(t, path, &g)
	return &g
}

func makeSignalGolden(t testing.TB) *goldenSignal {
	ctx := context.Background()
	cfg := &Config{Protocol: ratchet.Signal, OneTimePreKeys: 2, MinOneTimePreKeys: 1}
	mk := func(id uint32) (*Manager, store.Store, *PreKeyUpload) {
		st := memory.New()
		m, err := New(st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Init(ctx, id); err != nil {
			t.Fatal(err)
		}
		u, err := m.Upkeep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m, st, u
	}
	a, ast, _ := mk(1)
	b, bst, bu := mk(2)
	aa, ba := store.Address{Name: "alice", DeviceID: 1}, store.Address{Name: "bob", DeviceID: 2}
	ok := func(_ []byte, err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	if err := a.StartSignalSession(ctx, ba, bu.SignalBundle(&bu.OneTimePreKeys[0], &bu.KyberOneTimePreKeys[0])); err != nil {
		t.Fatal(err)
	}
	m1, err := a.Encrypt(ctx, ba, []byte("one"))
	ok(nil, err)
	late, err := a.Encrypt(ctx, ba, []byte("late"))
	ok(nil, err)
	ok(b.Decrypt(ctx, aa, m1))
	r, err := b.Encrypt(ctx, aa, []byte("reply"))
	ok(nil, err)
	ok(a.Decrypt(ctx, ba, r))
	if err := a.StartSignalSession(ctx, ba, bu.SignalBundle(nil, nil)); err != nil {
		t.Fatal(err)
	}
	load := func(st store.Store, addr store.Address) hexBytes {
		var rec []byte
		if err := st.View(ctx, func(tx store.Tx) error {
			var err error
			rec, err = tx.Sessions().Load(ctx, addr)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	return &goldenSignal{
		Description: "session record version 2 (Signal): alice holds an answered initiator session and a newer pending one (current); " +
			"bob holds the responder session with a one-time prekey; bob's continues the late PreKeySignalMessage",
		Alice: load(ast, ba), Bob: load(bst, aa), Late: late, LatePlaintext: "late",
	}
}

func TestGoldenSignalRecord(t *testing.T) {
	g := loadGoldenSignal(t)
	for name, c := range map[string]struct {
		rec     []byte
		n       int
		pending bool
	}{"alice": {g.Alice, 2, true}, "bob": {g.Bob, 1, false}} {
		t.Run(name, func(t *testing.T) {
			r, err := parseRecord(c.rec)
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.appendBinary(nil)
			if err != nil || !bytes.Equal(out, c.rec) {
				t.Fatalf("golden record does not re-marshal to itself: %v", err)
			}
			if r.proto != ratchet.Signal || r.n != c.n || r.entries[r.current].sig.pending() != c.pending {
				t.Fatalf("protocol %v, %d sessions, pending %v", r.proto, r.n, r.entries[r.current].sig.pending())
			}
		})
	}
	if string(g.Bob[:4]) != "rkss" || g.Bob[4] != 2 || g.Bob[5] != 0 || g.Bob[6] != 1 || g.Bob[7] != roleResponder {
		t.Errorf("bob's record header %x", g.Bob[:8])
	}
	// Alice's current entry is pending: role 1, flags 2 after the two keys.
	if g.Alice[7] != roleInitiator || g.Alice[7+67] != sigFlagPending {
		t.Errorf("alice's first entry %x", g.Alice[7:7+68])
	}

	st, m := readLate(t, &Config{Protocol: ratchet.Signal}, g.Bob, g.Late, g.LatePlaintext)
	ctx := context.Background()
	alice := store.Address{Name: "alice", DeviceID: 1}
	// A profile v1 Manager refuses the Signal record, and the other way.
	v1, err := New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v1.Encrypt(ctx, alice, []byte("x")); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("profile v1 Manager on a Signal record: %v", err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, alice, loadGolden(t).Bob) }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Encrypt(ctx, alice, []byte("x")); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Signal Manager on a profile v1 record: %v", err)
	}
}

// TestSignalRecordStrict: every truncation and trailing byte is refused,
// broken fields are, and random bit flips are refused or re-marshal
// identically.
func TestSignalRecordStrict(t *testing.T) {
	g := loadGoldenSignal(t)
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
	// Offsets from the layout: header 7, role 1, peer 33, base key 33,
	// flags 1.
	const e0, flags = 7, 7 + 67
	set := func(rec []byte, off int, v byte) []byte { b := bytes.Clone(rec); b[off] = v; return b }
	for _, c := range []struct {
		name string
		rec  []byte
	}{
		{"bob: version 3", set(g.Bob, 4, 3)},
		{"bob: version 1", set(g.Bob, 4, 1)},
		{"bob: role 1", set(g.Bob, e0, roleInitiator)},
		{"bob: role 3", set(g.Bob, e0, 3)},
		{"bob: peer key type", set(g.Bob, e0+1, 6)},
		{"bob: base key type", set(g.Bob, e0+34, 6)},
		{"bob: pending responder", set(g.Bob, flags, g.Bob[flags]|sigFlagPending)},
		{"bob: flags 4", set(g.Bob, flags, g.Bob[flags]|4)},
		{"bob: one-time prekey flag cleared", set(g.Bob, flags, g.Bob[flags]&^sigFlagOPK)},
		{"alice: not pending", set(g.Alice, flags, g.Alice[flags]&^sigFlagPending)},
		{"alice: local key type", set(g.Alice, flags+1+8+8, 6)},
		{"alice: Kyber ciphertext type", set(g.Alice, flags+1+8+8+33, 7)},
	} {
		if _, err := parseRecord(c.rec); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", c.name, err)
		}
	}
	rng := rand.New(rand.NewPCG(8, 8))
	for range 2000 {
		rec := bytes.Clone([][]byte{g.Alice, g.Bob}[rng.IntN(2)])
		rec[rng.IntN(len(rec))] ^= 1 << rng.IntN(8)
		r, err := parseRecord(rec)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
			}
			continue
		}
		if out, err := r.appendBinary(nil); err != nil || !bytes.Equal(out, rec) {
			t.Fatal("a flipped record parsed but re-marshals differently")
		}
	}
}
