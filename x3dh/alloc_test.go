package x3dh_test

import (
	"testing"

	"github.com/ratchetkit/ratchetkit/x3dh"
)

// TestAllocations pins the allocation counts of Initiate and Respond, so
// that a change that adds one shows up here rather than in a benchmark
// nobody reads.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	alice, bob, spk, opk, bundle := benchParties(t)
	b, err := x3dh.ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var in *x3dh.Initiation
	check := func(name string, max float64, f func()) {
		t.Helper()
		n := testing.AllocsPerRun(50, f)
		t.Logf("%s: %v allocs", name, n)
		if n > max {
			t.Errorf("%s: %v allocations, want at most %v", name, n, max)
		}
	}
	// The result and EK_A's public key; the bundle's identity key caches
	// its Edwards form after the first run.
	check("Initiate", 2, func() {
		if in, err = x3dh.Initiate(alice, b, nil); err != nil {
			t.Fatal(err)
		}
	})
	// The above plus XEdDSA's conversion of a fresh identity key (the
	// cache entry and the key) and ParseBundle's five objects.
	check("ParseBundle+Initiate", 9, func() {
		b, err := x3dh.ParseBundle(bundle)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = x3dh.Initiate(alice, b, nil); err != nil {
			t.Fatal(err)
		}
	})
	// The result only.
	check("Respond", 1, func() {
		if _, err := x3dh.Respond(bob, spk, opk, &in.Header, nil); err != nil {
			t.Fatal(err)
		}
	})
}
