package session_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// mutate returns a copy of b with f applied.
func mutate(b []byte, f func(b []byte) []byte) []byte {
	return f(bytes.Clone(b))
}

func setU32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b }
}

func setByte(off int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b[off] = v; return b }
}

// setKey replaces the 33-byte key encoding at off with 0x05 || u.
func setKey(off int, u []byte) func([]byte) []byte {
	return func(b []byte) []byte { b[off] = 0x05; copy(b[off+1:off+33], u); return b }
}

var (
	uZero = make([]byte, 32)                                                      // small order
	uP    = append([]byte{0xed}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...) // p: does not decode
	uHigh = append([]byte{0x09}, append(make([]byte, 30), 0x80)...)               // bit 255 set
)

// TestDecryptErrors checks the error of each kind of bad message and the
// order in which the checks run (PROTOCOL.md sections 6.3, 7.2 and 8.2),
// and that no failure changes anything.
func TestDecryptErrors(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	eve := newDevice(t, memory.New(), "eve", 1, nil) // another key at Alice's address
	carol := newDevice(t, memory.New(), "carol", 1, nil)

	// Alice's first message starts Bob's session with her; her second is
	// a prekey message with the same EK_A; Carol's is a prekey message
	// for a new session, not yet delivered.
	connect(t, srv, alice, bob)
	first := alice.encrypt(bob, "one")
	second := alice.encrypt(bob, "two")
	bob.decrypt(alice, first, "one")
	connect(t, srv, carol, bob)
	fresh := carol.encrypt(bob, "hi") // with a one-time prekey: 76-byte fixed part
	if fresh[1] != 1 {
		t.Fatal("want a one-time prekey in the bundle")
	}
	if err := carol.m.StartSession(ctx, bob.addr, srv.bundle(t, bob.addr, false)); err != nil {
		t.Fatal(err)
	}
	freshNoOPK := carol.encrypt(bob, "hi") // 72-byte fixed part
	reply := bob.encrypt(alice, "reply")   // a ratchet message
	// Eve, at Alice's address with another key.
	eve.addr = alice.addr
	connect(t, srv, eve, bob)
	evePM := eve.encrypt(bob, "I am alice")

	L := preKeyFixedOK
	for _, c := range []struct {
		name string
		from store.Address
		msg  []byte
		want string
	}{
		{"empty", alice.addr, nil, "malformed"},
		{"57 bytes of a prekey message", alice.addr, second[:minMessage-1], "malformed"},
		{"57 bytes of type 9", alice.addr, mutate(second[:minMessage-1], setByte(0, 9)), "malformed"},
		{"58 bytes of type 0", alice.addr, mutate(second[:minMessage], setByte(0, 0)), "unknown_type"},
		{"type 3", alice.addr, mutate(second, setByte(0, 3)), "unknown_type"},
		{"flags 2", alice.addr, mutate(second, setByte(1, 2)), "malformed"},
		{"flags 0x81", alice.addr, mutate(second, setByte(1, 0x81)), "malformed"},
		{"prekey message of 133 bytes", carol.addr, fresh[:L+minMessage-1], "malformed"},
		{"prekey message of 129 bytes", carol.addr, freshNoOPK[:preKeyFixed+minMessage-1], "malformed"},
		{"short beats a bad key", carol.addr, mutate(fresh[:L+minMessage-1], setKey(2, uP)), "malformed"},
		{"inner type 2", carol.addr, mutate(fresh, setByte(L, 2)), "malformed"},
		{"inner type beats a bad key", carol.addr, mutate(mutate(fresh, setByte(L, 0)), setKey(2, uP)), "malformed"},
		{"IK_A type 6", carol.addr, mutate(fresh, setByte(2, 6)), "bad_key"},
		{"IK_A = p", carol.addr, mutate(fresh, setKey(2, uP)), "bad_key"},
		{"EK_A bit 255", carol.addr, mutate(fresh, setKey(35, uHigh)), "bad_key"},
		{"inner ratchet key = p", carol.addr, mutate(fresh, setKey(L+1, uP)), "bad_key"},
		{"inner N = 2^32-1", carol.addr, mutate(fresh, setU32(L+38, 1<<32-1)), "counter_overflow"},
		{"inner PN = 2^32-1", carol.addr, mutate(fresh, setU32(L+34, 1<<32-1)), "counter_overflow"},
		{"bad key beats the counter", carol.addr, mutate(mutate(fresh, setU32(L+38, 1<<32-1)), setKey(L+1, uP)), "bad_key"},
		{"ratchet message, bad key, no session", carol.addr, mutate(reply, setKey(1, uP)), "bad_key"},
		{"ratchet message, counter, no session", carol.addr, mutate(reply, setU32(38, 1<<32-1)), "counter_overflow"},
		{"ratchet message, no session", carol.addr, reply, "no_session"},
		{"ratchet message, tampered", alice.addr, mutate(reply, setByte(len(reply)-1, reply[len(reply)-1]^1)), "auth_failed"},
		{"replay of the first", alice.addr, first, "duplicate"},
		{"same EK_A, other spk_id", alice.addr, mutate(second, setU32(68, 99)), "malformed"},
		{"same EK_A, other opk_id", alice.addr, mutate(second, setU32(72, 99)), "malformed"},
		{"same EK_A, other IK_A", alice.addr, mutate(second, setKey(2, uZero)), "malformed"},
		{"unknown spk_id", carol.addr, mutate(fresh, setU32(68, 99)), "unknown_prekey"},
		{"unknown opk_id", carol.addr, mutate(fresh, setU32(72, 99999)), "unknown_prekey"},
		{"untrusted beats unknown prekey", alice.addr, mutate(evePM, setU32(68, 99)), "untrusted_identity"},
		{"untrusted", alice.addr, evePM, "untrusted_identity"},
		{"small-order IK_A", carol.addr, mutate(fresh, setKey(2, uZero)), "bad_key"},
		{"small-order EK_A", carol.addr, mutate(fresh, setKey(35, uZero)), "bad_key"},
		{"unknown prekey beats a small-order key", carol.addr, mutate(mutate(fresh, setKey(35, uZero)), setU32(68, 99)), "unknown_prekey"},
		{"new session, tampered", carol.addr, mutate(fresh, setByte(len(fresh)-1, fresh[len(fresh)-1]^1)), "auth_failed"},
		{"new session, too far ahead", carol.addr, mutate(fresh, setU32(L+38, 5000)), "too_many_skipped"},
		{"new session, small-order ratchet key", carol.addr, mutate(fresh, setKey(L+1, uZero)), "bad_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := take(t, bob.st, alice.addr, carol.addr)
			_, err := bob.m.Decrypt(ctx, c.from, c.msg)
			if got := kind(err); got != c.want {
				t.Errorf("Decrypt: %v (%s), want %s", err, got, c.want)
			}
			if !before.equal(take(t, bob.st, alice.addr, carol.addr)) {
				t.Error("a failed Decrypt changed the store")
			}
		})
	}

	// The same EK_A with the other layout (no opk_id) is a field mismatch.
	noOPK := append([]byte{typePreKey, 0}, second[2:72]...)
	noOPK = append(noOPK, second[76:]...)
	if _, err := bob.m.Decrypt(ctx, alice.addr, noOPK); kind(err) != "malformed" {
		t.Errorf("same EK_A without opk_id: %v, want malformed", err)
	}

	// After all that, everything still works.
	bob.decrypt(alice, second, "two")
	bob.decrypt(carol, fresh, "hi")
	alice.decrypt(bob, reply, "reply")
}

func TestEncryptErrors(t *testing.T) {
	ctx := t.Context()
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	if _, err := bob.m.Encrypt(ctx, store.Address{Name: "nobody"}, []byte("x")); kind(err) != "no_session" {
		t.Errorf("Encrypt without a session: %v, want no_session", err)
	}
	// A Manager before Init.
	m, err := session.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.LocalIdentity(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LocalIdentity before Init: %v, want store.ErrNotFound", err)
	}
}

func TestStartSessionErrors(t *testing.T) {
	ctx := t.Context()
	srv := newServer()
	bob := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, bob)
	alice := newDevice(t, memory.New(), "alice", 1, nil)
	good := srv.bundle(t, bob.addr, true)
	small, _ := keys.NewPublicKey(uZero)
	badSig := *good
	badSig.SignedPreKeySignature = bytes.Clone(good.SignedPreKeySignature)
	badSig.SignedPreKeySignature[5] ^= 1
	shortSig := *good
	shortSig.SignedPreKeySignature = good.SignedPreKeySignature[:63]
	smallSPK := *good
	smallSPK.SignedPreKey = small
	smallOPK := *good
	smallOPK.OneTimePreKey = small
	smallIK := *good
	smallIK.IdentityKey = small
	noSPK := *good
	noSPK.SignedPreKey = nil
	for _, c := range []struct {
		name string
		b    *x3dh.Bundle
		want string
	}{
		{"nil", nil, "malformed"},
		{"no identity key", &x3dh.Bundle{}, "malformed"},
		{"no signed prekey", &noSPK, "malformed"},
		{"bad signature", &badSig, "invalid_signature"},
		{"short signature", &shortSig, "invalid_signature"},
		{"small-order signed prekey", &smallSPK, "bad_key"},
		{"small-order one-time prekey", &smallOPK, "bad_key"},
		{"small-order identity key", &smallIK, "bad_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := take(t, alice.st, bob.addr)
			if err := alice.m.StartSession(ctx, bob.addr, c.b); kind(err) != c.want {
				t.Errorf("StartSession: %v, want %s", err, c.want)
			}
			if !before.equal(take(t, alice.st, bob.addr)) {
				t.Error("a failed StartSession changed the store")
			}
		})
	}
	// With a trusted key, a changed one in a bundle that fails its own
	// checks reports those, not the identity change.
	connect(t, srv, alice, bob)
	other := newDevice(t, memory.New(), "bob", 1, nil)
	srv.publish(t, other)
	forged := *srv.bundle(t, bob.addr, true)
	forged.SignedPreKeySignature = badSig.SignedPreKeySignature
	if err := alice.m.StartSession(ctx, bob.addr, &forged); kind(err) != "invalid_signature" {
		t.Errorf("changed key with a bad signature: %v, want invalid_signature", err)
	}
	if err := alice.m.StartSession(ctx, bob.addr, srv.bundle(t, bob.addr, true)); kind(err) != "untrusted_identity" {
		t.Errorf("changed key: %v, want untrusted_identity", err)
	}
}
