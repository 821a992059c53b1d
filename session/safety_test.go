package session_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestSafetyNumberVectors checks the vectors that an independent
// implementation (testdata/session/safety_number.mjs, Node's SHA-512)
// computed from the documented construction.
func TestSafetyNumberVectors(t *testing.T) {
	j, err := os.ReadFile("../testdata/session/safety_number.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			LocalID      string `json:"local_id"`
			LocalKey     string `json:"local_key"`
			RemoteID     string `json:"remote_id"`
			RemoteKey    string `json:"remote_key"`
			SafetyNumber string `json:"safety_number"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(j, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) < 7 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	key := func(h string) *keys.PublicKey {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		k, err := keys.DecodePublicKey(b)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	format := regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`)
	for i, v := range f.Vectors {
		got := session.SafetyNumber(v.LocalID, key(v.LocalKey), v.RemoteID, key(v.RemoteKey))
		if got != v.SafetyNumber {
			t.Errorf("vector %d: %s, want %s", i, got, v.SafetyNumber)
		}
		if !format.MatchString(got) {
			t.Errorf("vector %d: %q is not 12 groups of 5 digits", i, got)
		}
	}
}

func TestSafetyNumberProperties(t *testing.T) {
	k1, _ := keys.GeneratePrivateKey()
	k2, _ := keys.GeneratePrivateKey()
	a, b := k1.PublicKey(), k2.PublicKey()
	n := session.SafetyNumber("alice", a, "bob", b)
	if m := session.SafetyNumber("bob", b, "alice", a); m != n {
		t.Fatal("the two sides compute different numbers")
	}
	halves := func(s string) (string, string) { s = strings.ReplaceAll(s, " ", ""); return s[:30], s[30:] }
	n1, n2 := halves(n)
	// Another key for bob changes bob's half only; another name too.
	k3, _ := keys.GeneratePrivateKey()
	for _, m := range []string{
		session.SafetyNumber("alice", a, "bob", k3.PublicKey()),
		session.SafetyNumber("alice", a, "bob2", b),
	} {
		m1, m2 := halves(m)
		shared := 0
		for _, x := range []string{m1, m2} {
			if x == n1 || x == n2 {
				shared++
			}
		}
		if shared != 1 {
			t.Errorf("%s vs %s: %d halves shared, want 1", m, n, shared)
		}
	}
}

func TestManagerSafetyNumber(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	if _, err := alice.m.SafetyNumber(ctx, "alice", bob.addr); err == nil {
		t.Error("safety number before any key is known")
	}
	connect(t, srv, alice, bob)
	got, err := alice.m.SafetyNumber(ctx, "alice", bob.addr)
	if err != nil {
		t.Fatal(err)
	}
	ak, _, _ := alice.m.LocalIdentity(ctx)
	bk, _, _ := bob.m.LocalIdentity(ctx)
	if want := session.SafetyNumber("alice", ak, "bob", bk); got != want {
		t.Errorf("Manager.SafetyNumber %s, want %s", got, want)
	}
}
