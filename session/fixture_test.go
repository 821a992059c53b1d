package session

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// fixedKey derives a private key from a label, for reproducible fixtures.
func fixedKey(label string) *keys.PrivateKey {
	h := sha256.Sum256([]byte("ratchetkit session fixture " + label))
	k, err := keys.NewPrivateKey(h[:])
	if err != nil {
		panic(err)
	}
	return k
}

// counterSource hands out fixedKey(label/0), fixedKey(label/1), …
func counterSource(label string) hazmat.KeySource {
	n := 0
	return func() (*keys.PrivateKey, error) {
		n++
		return fixedKey(label + "/" + string(rune('a'+n-1))), nil
	}
}

// fixedParty is a device whose every key is reproducible.
type fixedParty struct {
	addr store.Address
	st   store.Store
	m    *Manager
	ik   *keys.IdentityKeyPair
}

var fixedTime = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

func fixedIdentity(name string) *keys.IdentityKeyPair {
	ik, err := keys.NewIdentityKeyPair(fixedKey(name + " identity").Bytes())
	if err != nil {
		panic(err)
	}
	return ik
}

// newFixedParty returns a party over a new memory store holding its
// reproducible keys, with X3DH and ratchet keys from counterSource(name).
func newFixedParty(t testing.TB, name string, cfg Config) *fixedParty {
	t.Helper()
	st := memory.New()
	seedFixed(t, st, name)
	return newFixedManager(t, st, name, cfg, counterSource(name))
}

// newFixedManager returns a party over st, which seedFixed filled.
func newFixedManager(t testing.TB, st store.Store, name string, cfg Config, src hazmat.KeySource) *fixedParty {
	t.Helper()
	p := &fixedParty{addr: store.Address{Name: name, DeviceID: 1}, st: st, ik: fixedIdentity(name)}
	cfg.Now = func() time.Time { return fixedTime }
	hazmat.SetSessionKeySource(&cfg, src)
	var err error
	if p.m, err = New(st, &cfg); err != nil {
		t.Fatal(err)
	}
	return p
}

// seedFixed stores name's identity, signed prekey 1 and one-time prekeys
// 7 and 8.
func seedFixed(t testing.TB, st store.Store, name string) {
	t.Helper()
	ctx := context.Background()
	ik := fixedIdentity(name)
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: 1}); err != nil {
			return err
		}
		spkKey := fixedKey(name + " spk")
		spk, err := keys.NewSignedPreKey(1, spkKey, ik.Sign(spkKey.PublicKey().Encode()), fixedTime)
		if err != nil {
			return err
		}
		if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
			return err
		}
		return tx.PreKeys().Add(ctx, []*keys.OneTimePreKey{
			keys.NewOneTimePreKey(7, fixedKey(name+" opk 7")),
			keys.NewOneTimePreKey(8, fixedKey(name+" opk 8")),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bundle returns p's bundle with one-time prekey opk (0 for none).
func (p *fixedParty) bundle(opk uint32) *x3dh.Bundle {
	spkKey := fixedKey(p.addr.Name + " spk")
	b := &x3dh.Bundle{
		IdentityKey:           p.ik.PublicKey(),
		SignedPreKeyID:        1,
		SignedPreKey:          spkKey.PublicKey(),
		SignedPreKeySignature: p.ik.Sign(spkKey.PublicKey().Encode()),
	}
	if opk != 0 {
		b.OneTimePreKeyID = opk
		b.OneTimePreKey = fixedKey(p.addr.Name + " opk " + string(rune('0'+opk))).PublicKey()
	}
	return b
}

func (p *fixedParty) record(t testing.TB, peer store.Address) []byte {
	t.Helper()
	ctx := context.Background()
	var rec []byte
	err := p.st.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.Sessions().Load(ctx, peer)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// must returns a function that fails t on an error and returns the bytes
// otherwise, for calls like must(t)(m.Encrypt(…)).
func must(t testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// fixture is a reproducible conversation between Alice and Bob and the
// records it leaves.
type fixture struct {
	alice, bob *fixedParty
	// aliceRecord: two initiator sessions, the older one answered.
	// bobRecord: two responder sessions, the older one current (promoted
	// by a late message), holding skipped keys.
	aliceRecord, bobRecord []byte
	// late is Alice's second message, a prekey message of her first
	// session, not yet delivered: bobRecord decrypts it to "two".
	late []byte
}

func makeFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{alice: newFixedParty(t, "alice", Config{}), bob: newFixedParty(t, "bob", Config{})}
	a, b := f.alice, f.bob
	if err := a.m.StartSession(ctx, b.addr, b.bundle(7)); err != nil {
		t.Fatal(err)
	}
	m1 := must(t)(a.m.Encrypt(ctx, b.addr, []byte("one")))
	f.late = must(t)(a.m.Encrypt(ctx, b.addr, []byte("two")))
	m3 := must(t)(a.m.Encrypt(ctx, b.addr, []byte("three")))
	must(t)(b.m.Decrypt(ctx, a.addr, m3))
	r1 := must(t)(b.m.Encrypt(ctx, a.addr, []byte("r1")))
	must(t)(a.m.Decrypt(ctx, b.addr, r1))
	if err := a.m.StartSession(ctx, b.addr, b.bundle(0)); err != nil {
		t.Fatal(err)
	}
	m4 := must(t)(a.m.Encrypt(ctx, b.addr, []byte("four")))
	must(t)(b.m.Decrypt(ctx, a.addr, m4))
	must(t)(b.m.Decrypt(ctx, a.addr, m1)) // promotes the first session
	f.aliceRecord = a.record(t, b.addr)
	f.bobRecord = b.record(t, a.addr)
	return f
}
