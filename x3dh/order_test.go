package x3dh

import (
	"crypto/ecdh"
	"crypto/rand"
	"math/big"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
)

var fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

func leInt(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

// xDouble returns the u-coordinate of 2P for a point with u-coordinate x
// on v² = u³ + 486662u² + u (curve or twist alike), or nil for 2P = ∞:
// u(2P) = (u² − 1)² / (4u(u² + Au + 1)).
func xDouble(x *big.Int) *big.Int {
	p := fieldP
	x2 := new(big.Int).Mul(x, x)
	num := new(big.Int).Sub(x2, big.NewInt(1))
	num.Mul(num, num).Mod(num, p)
	den := new(big.Int).Add(x2, new(big.Int).Mul(big.NewInt(486662), x))
	den.Add(den, big.NewInt(1)).Mul(den, x).Mul(den, big.NewInt(4)).Mod(den, p)
	if den.Sign() == 0 {
		return nil
	}
	return num.Mul(num, den.ModInverse(den, p)).Mod(num, p)
}

// TestSmallOrderTable checks each listed u: it is canonical, it doubles to
// the point at infinity within three doublings (order divides 8), X25519
// (crypto/ecdh, independent of this package) refuses it under random
// scalars, and isSmallOrder recognises it.
func TestSmallOrderTable(t *testing.T) {
	seen := map[[32]byte]bool{}
	for _, u := range smallOrder {
		if seen[u] {
			t.Fatalf("%x listed twice", u)
		}
		seen[u] = true
		x := leInt(u[:])
		if x.Cmp(fieldP) >= 0 {
			t.Fatalf("%x is not canonical", u)
		}
		order := 1
		for ; x != nil && order < 8; order *= 2 {
			x = xDouble(x)
		}
		if x != nil {
			t.Fatalf("%x does not have order dividing 8", u)
		}
		for range 4 {
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ecdh.X25519().NewPublicKey(u[:])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.ECDH(p); err == nil {
				t.Fatalf("X25519 with %x gave a non-zero secret", u)
			}
		}
		pk, err := keys.NewPublicKey(u[:])
		if err != nil {
			t.Fatal(err)
		}
		if !isSmallOrder(pk) {
			t.Errorf("isSmallOrder(%x) = false", u)
		}
	}
	// The table is complete: besides 0 and ±1 (order 2 and 4), every
	// small-order u has order 8, so doubles to ±1; the test checks that both
	// order-8 entries do, and that there are exactly two of them.
	minusOne := new(big.Int).Sub(fieldP, big.NewInt(1))
	order8 := 0
	for _, u := range smallOrder {
		d := xDouble(leInt(u[:]))
		if d != nil && (d.Cmp(big.NewInt(1)) == 0 || d.Cmp(minusOne) == 0) {
			order8++
		}
	}
	if order8 != 2 {
		t.Errorf("%d order-8 entries, want 2", order8)
	}
}

// TestNotSmallOrder checks that random keys are not flagged.
func TestNotSmallOrder(t *testing.T) {
	for range 100 {
		k, err := keys.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		if isSmallOrder(k.PublicKey()) {
			t.Fatalf("random key %x flagged", k.PublicKey().Bytes())
		}
	}
	// Neighbours of the listed values are ordinary.
	for _, u := range smallOrder {
		v := u
		v[0] ^= 2
		if pk, err := keys.NewPublicKey(v[:]); err == nil && isSmallOrder(pk) {
			t.Errorf("%x flagged", v)
		}
	}
}

// TestSecretsWipe checks that wipe clears every buffer.
func TestSecretsWipe(t *testing.T) {
	var s secrets
	for _, b := range [][]byte{s.ikm[:], s.self[:], s.eph[:], s.opk[:]} {
		for i := range b {
			b[i] = 0xa5
		}
	}
	s.wipe()
	if s != (secrets{}) {
		t.Error("wipe left bytes")
	}
}
