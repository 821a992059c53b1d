package pqxdh

import (
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
)

// party holds the libsignal responder's keys of one session, loaded into
// ratchetkit types.
type party struct {
	ik  *keys.IdentityKeyPair
	spk *keys.SignedPreKey
	opk *keys.OneTimePreKey
	kpk *kyber.PreKey
}

func mustPriv(t testing.TB, h string) *keys.PrivateKey {
	t.Helper()
	k, err := keys.NewPrivateKey(libsignaltest.Hex(t, h))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPub(t testing.TB, b []byte) *keys.PublicKey {
	t.Helper()
	k, err := keys.DecodePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKyberPub(t testing.TB, h string) *kyber.PublicKey {
	t.Helper()
	k, err := kyber.ParsePublicKey(libsignaltest.Hex(t, h))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func responder(t testing.TB, s *libsignaltest.Session) *party {
	t.Helper()
	ik, err := keys.NewIdentityKeyPair(libsignaltest.Hex(t, s.Bob.Identity.Private))
	if err != nil {
		t.Fatal(err)
	}
	spk, err := keys.NewSignedPreKey(s.Bob.SignedPreKey.ID, mustPriv(t, s.Bob.SignedPreKey.Private),
		libsignaltest.Hex(t, s.Bob.SignedPreKey.Signature), time.Unix(1767225600, 0))
	if err != nil {
		t.Fatal(err)
	}
	p := &party{ik: ik, spk: spk}
	if o := s.Bob.OneTimePreKey; o != nil {
		p.opk = keys.NewOneTimePreKey(o.ID, mustPriv(t, o.Private))
	}
	sk, err := kyber.NewPrivateKey(libsignaltest.Hex(t, s.Bob.KyberPreKey.Seed))
	if err != nil {
		t.Fatal(err)
	}
	if p.kpk, err = kyber.NewPreKey(s.Bob.KyberPreKey.ID, sk, libsignaltest.Hex(t, s.Bob.KyberPreKey.Signature), time.Unix(1767225600, 0), false); err != nil {
		t.Fatal(err)
	}
	return p
}

func bundleOf(t testing.TB, b *libsignaltest.Bundle) *Bundle {
	t.Helper()
	out := &Bundle{
		RegistrationID:        b.RegistrationID,
		DeviceID:              b.DeviceID,
		IdentityKey:           mustPub(t, libsignaltest.Hex(t, b.IdentityKey)),
		SignedPreKeyID:        b.SignedPreKeyID,
		SignedPreKey:          mustPub(t, libsignaltest.Hex(t, b.SignedPreKey)),
		SignedPreKeySignature: libsignaltest.Hex(t, b.SignedPreKeySignature),
		KyberPreKeyID:         b.KyberPreKeyID,
		KyberPreKey:           mustKyberPub(t, b.KyberPreKey),
		KyberPreKeySignature:  libsignaltest.Hex(t, b.KyberPreKeySignature),
	}
	if b.PreKey != nil {
		out.OneTimePreKeyID = *b.PreKeyID
		out.OneTimePreKey = mustPub(t, libsignaltest.Hex(t, *b.PreKey))
	}
	return out
}

// headerOf reads the PQXDH fields of libsignal's first PreKeySignalMessage
// (its protobuf fields 2, 3 and 8; the ids come from the bundle).
func headerOf(t testing.TB, s *libsignaltest.Session) *Header {
	t.Helper()
	wire := libsignaltest.Hex(t, s.Messages[0].Wire)
	h := &Header{
		IdentityKey:     mustPub(t, libsignaltest.BytesField(t, wire[1:], 3)),
		BaseKey:         mustPub(t, libsignaltest.BytesField(t, wire[1:], 2)),
		SignedPreKeyID:  s.Bundle.SignedPreKeyID,
		KyberPreKeyID:   s.Bundle.KyberPreKeyID,
		KyberCiphertext: libsignaltest.BytesField(t, wire[1:], 8),
	}
	if s.Bundle.PreKeyID != nil {
		h.HasOneTimePreKey = true
		h.OneTimePreKeyID = *s.Bundle.PreKeyID
	}
	return h
}

func kyberParse(b []byte) (*kyber.PublicKey, error) { return kyber.ParsePublicKey(b) }
