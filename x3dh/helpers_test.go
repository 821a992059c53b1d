package x3dh_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// seed32 derives 32 deterministic bytes from a label, for test keys.
func seed32(label string) []byte {
	s := sha256.Sum256([]byte("ratchetkit x3dh test: " + label))
	return s[:]
}

func mustPrivate(tb testing.TB, label string) *keys.PrivateKey {
	tb.Helper()
	k, err := keys.NewPrivateKey(seed32(label))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustIdentity(tb testing.TB, label string) *keys.IdentityKeyPair {
	tb.Helper()
	k, err := keys.NewIdentityKeyPair(seed32(label))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// mustSignedPreKey makes a signed prekey from a label, signed by ik.
func mustSignedPreKey(tb testing.TB, ik *keys.IdentityKeyPair, id uint32, label string) *keys.SignedPreKey {
	tb.Helper()
	priv := mustPrivate(tb, label)
	spk, err := keys.NewSignedPreKey(id, priv, ik.Sign(priv.PublicKey().Encode()), time0)
	if err != nil {
		tb.Fatal(err)
	}
	return spk
}

// bundleOf assembles Bob's bundle; opk may be nil.
func bundleOf(ik *keys.IdentityKeyPair, spk *keys.SignedPreKey, opk *keys.OneTimePreKey) *x3dh.Bundle {
	b := &x3dh.Bundle{
		IdentityKey:           ik.PublicKey(),
		SignedPreKeyID:        spk.ID(),
		SignedPreKey:          spk.PublicKey(),
		SignedPreKeySignature: spk.Signature(),
	}
	if opk != nil {
		b.OneTimePreKeyID = opk.ID()
		b.OneTimePreKey = opk.PublicKey()
	}
	return b
}

func mustMarshal(tb testing.TB, b *x3dh.Bundle) []byte {
	tb.Helper()
	enc, err := b.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

var time0 = time.Unix(1_700_000_000, 0)
