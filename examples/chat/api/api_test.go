package api_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/keys"
)

func TestValidName(t *testing.T) {
	for _, name := range []string{"a", "alice", "bob-2", "x_y", strings.Repeat("z", api.MaxNameLen)} {
		if !api.ValidName(name) {
			t.Errorf("ValidName(%q) = false", name)
		}
	}
	for _, name := range []string{"", "Alice", "al ice", "al.ice", "../x", "é", "a\x00", "a\x1b", strings.Repeat("z", api.MaxNameLen+1)} {
		if api.ValidName(name) {
			t.Errorf("ValidName(%q) = true", name)
		}
	}
}

// A bundle survives JSON and converts to the library's bundle, which
// verifies; a key that does not decode is an error naming which key.
func TestBundleX3DH(t *testing.T) {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	spk, err := keys.GenerateSignedPreKey(ik, 7)
	if err != nil {
		t.Fatal(err)
	}
	opks, err := keys.GenerateOneTimePreKeys(40, 1)
	if err != nil {
		t.Fatal(err)
	}
	pk := api.NewPreKeys(opks)[0]
	in := api.Bundle{Name: "bob", IdentityKey: ik.PublicKey().Encode(), SignedPreKey: api.NewSignedPreKey(spk), OneTimePreKey: &pk}
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var b api.Bundle
	if err := json.Unmarshal(j, &b); err != nil {
		t.Fatal(err)
	}
	xb, err := b.X3DH()
	if err != nil {
		t.Fatal(err)
	}
	if err := xb.Verify(); err != nil {
		t.Fatal(err)
	}
	if xb.SignedPreKeyID != 7 || xb.OneTimePreKeyID != 40 || !xb.OneTimePreKey.Equal(opks[0].PublicKey()) {
		t.Fatalf("converted bundle: %+v", xb)
	}
	b.OneTimePreKey = nil
	if xb, err = b.X3DH(); err != nil || xb.OneTimePreKey != nil || xb.OneTimePreKeyID != 0 {
		t.Fatalf("without a one-time prekey: %+v, %v", xb, err)
	}

	bad := append([]byte{0x06}, make([]byte, 32)...)
	for name, mutate := range map[string]func(*api.Bundle){
		"identity key":    func(b *api.Bundle) { b.IdentityKey = bad },
		"signed prekey":   func(b *api.Bundle) { b.SignedPreKey.Key = bad[:5] },
		"one-time prekey": func(b *api.Bundle) { b.OneTimePreKey = &api.PreKey{ID: 1, Key: bad} },
	} {
		c := in
		mutate(&c)
		_, err := c.X3DH()
		if !errors.Is(err, keys.ErrInvalidPublicKey) || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: %v", name, err)
		}
	}
}
