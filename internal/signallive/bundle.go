package signallive

import (
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// FreshBundle asks live.mjs's party as ("alice" or "bob") for a new
// bundle: new signed, Kyber and, if withPreKey, one-time EC prekeys,
// signed by its current identity key.
func FreshBundle(t testing.TB, p *libsignaltest.Peer, as string, withPreKey bool) *pqxdh.Bundle {
	t.Helper()
	r := p.Call(map[string]any{"op": "bundle", "as": as, "prekey": withPreKey})
	if !r.OK {
		t.Fatalf("libsignal bundle: %s", r.Error)
	}
	var b libsignaltest.Bundle
	if err := json.Unmarshal(libsignaltest.Hex(t, r.Wire), &b); err != nil {
		t.Fatal(err)
	}
	return Bundle(t, &b)
}

// Bundle decodes a bundle in vectors.json's form.
func Bundle(t testing.TB, ls *libsignaltest.Bundle) *pqxdh.Bundle {
	t.Helper()
	h := func(x string) []byte { return libsignaltest.Hex(t, x) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	b := &pqxdh.Bundle{RegistrationID: ls.RegistrationID, DeviceID: ls.DeviceID,
		SignedPreKeyID: ls.SignedPreKeyID, SignedPreKeySignature: h(ls.SignedPreKeySignature),
		KyberPreKeyID: ls.KyberPreKeyID, KyberPreKeySignature: h(ls.KyberPreKeySignature)}
	var err error
	b.IdentityKey, err = keys.DecodePublicKey(h(ls.IdentityKey))
	must(err)
	b.SignedPreKey, err = keys.DecodePublicKey(h(ls.SignedPreKey))
	must(err)
	b.KyberPreKey, err = kyber.ParsePublicKey(h(ls.KyberPreKey))
	must(err)
	if ls.PreKey != nil {
		b.OneTimePreKeyID = *ls.PreKeyID
		b.OneTimePreKey, err = keys.DecodePublicKey(h(*ls.PreKey))
		must(err)
	}
	return b
}

// BundleRequest is b as live.mjs's process_bundle takes it.
func BundleRequest(b *pqxdh.Bundle) map[string]any {
	m := map[string]any{
		"registration_id": b.RegistrationID, "device_id": b.DeviceID, "prekey_id": nil, "prekey": nil,
		"signed_prekey_id": b.SignedPreKeyID, "signed_prekey": hex.EncodeToString(b.SignedPreKey.Encode()),
		"signed_prekey_signature": hex.EncodeToString(b.SignedPreKeySignature),
		"identity_key":            hex.EncodeToString(b.IdentityKey.Encode()),
		"kyber_prekey_id":         b.KyberPreKeyID, "kyber_prekey": hex.EncodeToString(b.KyberPreKey.Encode()),
		"kyber_prekey_signature": hex.EncodeToString(b.KyberPreKeySignature),
	}
	if b.OneTimePreKey != nil {
		m["prekey_id"], m["prekey"] = b.OneTimePreKeyID, hex.EncodeToString(b.OneTimePreKey.Encode())
	}
	return m
}
