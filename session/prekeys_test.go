package session_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// clock is a settable Config.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestUpkeep(t *testing.T) {
	ctx := t.Context()
	clk := &clock{time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)}
	cfg := &session.Config{OneTimePreKeys: 20, MinOneTimePreKeys: 5, Now: clk.now}
	bob := newDevice(t, memory.New(), "bob", 3, cfg)

	u, err := bob.m.Upkeep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ik, dev, err := bob.m.LocalIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Rotated || u.SignedPreKeyID != 1 || len(u.OneTimePreKeys) != 20 || dev != 3 || u.DeviceID != 3 || !u.IdentityKey.Equal(ik) {
		t.Fatalf("first Upkeep: rotated %v, spk %d, %d one-time prekeys, device %d", u.Rotated, u.SignedPreKeyID, len(u.OneTimePreKeys), u.DeviceID)
	}
	for i, p := range u.OneTimePreKeys {
		if p.ID != uint32(i+1) {
			t.Fatalf("one-time prekey %d has id %d", i, p.ID)
		}
	}
	if err := keys.VerifySignedPreKey(ik, u.SignedPreKey, u.SignedPreKeySignature); err != nil {
		t.Fatalf("signed prekey signature: %v", err)
	}
	for _, b := range [...]bool{false, true} {
		var opk *session.PublicPreKey
		if b {
			opk = &u.OneTimePreKeys[3]
		}
		bn := u.Bundle(opk)
		if err := bn.Verify(); err != nil {
			t.Fatalf("bundle: %v", err)
		}
		if (bn.OneTimePreKey != nil) != b || (b && bn.OneTimePreKeyID != 4) {
			t.Fatalf("bundle's one-time prekey: %v, id %d", bn.OneTimePreKey, bn.OneTimePreKeyID)
		}
	}

	// Nothing to do right after.
	clk.advance(time.Hour)
	u2, err := bob.m.Upkeep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u2.Rotated || len(u2.OneTimePreKeys) != 0 || u2.SignedPreKeyID != 1 {
		t.Fatalf("second Upkeep: rotated %v, %d new one-time prekeys", u2.Rotated, len(u2.OneTimePreKeys))
	}

	// Sixteen peers use one-time prekeys 1 to 16: four are left, below the
	// minimum of five.
	srv := newServer()
	srv.uploads[bob.addr], srv.opks[bob.addr] = u, u.OneTimePreKeys
	oldBundle := u.Bundle(nil)
	for i := range 16 {
		a := newDevice(t, memory.New(), "peer", uint32(i), nil)
		connect(t, srv, a, bob)
		bob.decrypt(a, a.encrypt(bob, "hi"), "hi")
	}
	st, err := bob.m.PreKeyStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.OneTimePreKeys != 4 || !st.Low || st.RotationDue || st.SignedPreKeyID != 1 || st.SignedPreKeys != 1 {
		t.Fatalf("status %+v", st)
	}
	// Refilled to 20, with ids after the highest ever used, not the gaps.
	u3, err := bob.m.Upkeep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(u3.OneTimePreKeys) != 16 || u3.OneTimePreKeys[0].ID != 21 || u3.OneTimePreKeys[15].ID != 36 || u3.Rotated {
		t.Fatalf("refill: %d keys from id %d, rotated %v", len(u3.OneTimePreKeys), u3.OneTimePreKeys[0].ID, u3.Rotated)
	}

	// A week later the signed prekey is rotated; the old one stays for
	// the grace period, so a peer with an old bundle still gets through.
	clk.advance(session.DefaultSignedPreKeyRotation)
	if st, _ := bob.m.PreKeyStatus(ctx); !st.RotationDue {
		t.Fatal("rotation not due after a week")
	}
	u4, err := bob.m.Upkeep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !u4.Rotated || u4.SignedPreKeyID != 2 || u4.SignedPreKey.Equal(u.SignedPreKey) {
		t.Fatalf("rotation: rotated %v, id %d", u4.Rotated, u4.SignedPreKeyID)
	}
	late := newDevice(t, memory.New(), "late", 1, nil)
	if err := late.m.StartSession(ctx, bob.addr, oldBundle); err != nil {
		t.Fatal(err)
	}
	bob.decrypt(late, late.encrypt(bob, "old bundle"), "old bundle")

	// Once the grace period has passed, the old one is deleted: a prekey
	// message that names it fails.
	later := newDevice(t, memory.New(), "later", 1, nil)
	if err := later.m.StartSession(ctx, bob.addr, oldBundle); err != nil {
		t.Fatal(err)
	}
	clk.advance(session.DefaultSignedPreKeyGrace)
	if _, err := bob.m.Upkeep(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = bob.m.PreKeyStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SignedPreKeyID != 3 || st.SignedPreKeys != 2 {
		t.Fatalf("after the grace period: current %d, %d kept; want 3 and 2", st.SignedPreKeyID, st.SignedPreKeys)
	}
	if _, err := bob.m.Decrypt(ctx, later.addr, later.encrypt(bob, "too late")); kind(err) != "unknown_prekey" {
		t.Errorf("prekey message naming an expired signed prekey: %v, want unknown_prekey", err)
	}
	// The session made under it is not affected.
	bob.decrypt(late, late.encrypt(bob, "still here"), "still here")

	// Explicit rotation and generation.
	if err := bob.m.RotateSignedPreKey(ctx); err != nil {
		t.Fatal(err)
	}
	up, err := bob.m.PreKeyUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up.SignedPreKeyID != 4 || len(up.OneTimePreKeys) != 0 {
		t.Fatalf("PreKeyUpload after RotateSignedPreKey: id %d", up.SignedPreKeyID)
	}
	more, err := bob.m.GenerateOneTimePreKeys(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(more) != 3 || more[0].ID != 37 {
		t.Fatalf("GenerateOneTimePreKeys: %d from %d", len(more), more[0].ID)
	}
}

func TestPreKeyIDsExhausted(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	bob := newDevice(t, st, "bob", 1, nil)
	err := st.Update(ctx, func(tx store.Tx) error {
		pks, err := keys.GenerateOneTimePreKeys(math.MaxUint32-2, 2)
		if err != nil {
			return err
		}
		return tx.PreKeys().Add(ctx, pks)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.m.GenerateOneTimePreKeys(ctx, 2); err == nil {
		t.Error("generating past id 2^32-1 succeeded")
	}
	if got, err := bob.m.GenerateOneTimePreKeys(ctx, 1); err != nil || len(got) != 1 || got[0].ID != math.MaxUint32 {
		t.Errorf("the last id: %v, %v", got, err)
	}
}

func TestPreKeyUploadBeforeUpkeep(t *testing.T) {
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	if _, err := bob.m.PreKeyUpload(context.Background()); err == nil {
		t.Error("PreKeyUpload without a signed prekey succeeded")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []session.Config{
		{MaxArchived: 41},
		{Trust: 7},
		{OneTimePreKeys: 5, MinOneTimePreKeys: 6},
		{OneTimePreKeys: -1},
		{SignedPreKeyGrace: -time.Second},
	} {
		if _, err := session.New(memory.New(), &c); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
	if _, err := session.New(nil, nil); err == nil {
		t.Error("New accepted a nil store")
	}
	// A store belongs to one device id.
	st := memory.New()
	newDevice(t, st, "bob", 1, nil)
	m, _ := session.New(st, nil)
	if err := m.Init(t.Context(), 2); err == nil {
		t.Error("Init with another device id succeeded")
	}
	if err := m.Init(t.Context(), 1); err != nil {
		t.Errorf("Init again: %v", err)
	}
}
