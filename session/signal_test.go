package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// signalDevice is a Signal-protocol device with its upload.
type signalDevice struct {
	*device
	up *session.PreKeyUpload
	// bundle is the peer bundle the device last started from, where a
	// test keeps it.
	bundle *pqxdh.Bundle
}

func newSignalDevice(t testing.TB, st store.Store, name string, id uint32, now func() time.Time) *signalDevice {
	t.Helper()
	d := newDevice(t, st, name, id, &session.Config{Protocol: ratchet.Signal, RegistrationID: 1000 + id, OneTimePreKeys: 4, MinOneTimePreKeys: 2, Now: now})
	up, err := d.m.Upkeep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if up.KyberLastResort == nil || len(up.KyberOneTimePreKeys) != 4 || len(up.OneTimePreKeys) != 4 || !up.KyberRotated {
		t.Fatalf("upload: last resort %v, %d Kyber and %d EC one-time prekeys", up.KyberLastResort != nil, len(up.KyberOneTimePreKeys), len(up.OneTimePreKeys))
	}
	return &signalDevice{device: d, up: up}
}

// start makes a start a Signal session with b, with b's i-th one-time EC
// prekey if opk >= 0 and its k-th one-time Kyber prekey if kyberIdx >= 0
// (else the last-resort one).
func (a *signalDevice) start(b *signalDevice, opk, kyberIdx int) {
	a.t.Helper()
	var o *session.PublicPreKey
	if opk >= 0 {
		o = &b.up.OneTimePreKeys[opk]
	}
	var k *session.PublicKyberPreKey
	if kyberIdx >= 0 {
		k = &b.up.KyberOneTimePreKeys[kyberIdx]
	}
	if err := a.m.StartSignalSession(a.t.Context(), b.addr, b.up.SignalBundle(o, k)); err != nil {
		a.t.Fatal(err)
	}
}

// kyberCount counts st's Kyber prekeys.
func kyberCount(t testing.TB, st store.Store) (oneTime, lastResort int) {
	t.Helper()
	err := st.View(t.Context(), func(tx store.Tx) error {
		kp, err := store.KyberPreKeysOf(tx)
		if err != nil {
			return err
		}
		oneTime, lastResort, err = kp.Count(t.Context())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return oneTime, lastResort
}

// isPreKey reports whether msg is a PreKeySignalMessage; it fails the
// test if msg is neither kind.
func isPreKey(t testing.TB, msg []byte) bool {
	t.Helper()
	if _, _, err := signalwire.ParsePreKeySignalMessage(msg); err == nil {
		return true
	}
	if _, _, _, err := signalwire.ParseSignalMessage(msg); err != nil {
		t.Fatalf("neither a PreKeySignalMessage nor a SignalMessage: %v", err)
	}
	return false
}

// refused checks that msg fails with want (any error if nil) and leaves d's store as it was.
func (d *signalDevice) refused(from *signalDevice, msg []byte, want error) {
	d.t.Helper()
	before := take(d.t, d.st, from.addr)
	_, err := d.m.Decrypt(d.t.Context(), from.addr, msg)
	if err == nil || (want != nil && !errors.Is(err, want)) {
		d.t.Fatalf("Decrypt: %v, want %v", err, want)
	}
	if !take(d.t, d.st, from.addr).equal(before) {
		d.t.Fatal("a refused message changed the store")
	}
}

func TestSignalConversation(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		for _, withOPK := range []bool{true, false} {
			t.Run(fmt.Sprintf("opk=%v", withOPK), func(t *testing.T) {
				alice := newSignalDevice(t, b.fresh(t)(t), "alice", 1, nil)
				bob := newSignalDevice(t, b.fresh(t)(t), "bob", 2, nil)
				opk := -1
				if withOPK {
					opk = 0
				}
				alice.start(bob, opk, 1)
				m1, m2, m3 := alice.encrypt(bob.device, "one"), alice.encrypt(bob.device, "two"), alice.encrypt(bob.device, "three")
				for _, m := range [][]byte{m1, m2, m3} {
					if m[0] != 0x44 || !isPreKey(t, m) {
						t.Fatal("the initiator's first messages are not PreKeySignalMessages")
					}
				}
				// Tampered inner message: refused, nothing saved.
				bad := bytes.Clone(m3)
				bad[len(bad)-1] ^= 1
				bob.refused(alice, bad, ratchet.ErrAuthentication)
				bob.decrypt(alice.device, m3, "three")
				bob.decrypt(alice.device, m1, "one")
				bob.refused(alice, m1, ratchet.ErrDuplicate)
				if ot, _ := kyberCount(t, bob.st); ot != 3 {
					t.Fatalf("%d one-time Kyber prekeys left, want 3", ot)
				}
				wantOPK := 4
				if withOPK {
					wantOPK = 3
				}
				if n := take(t, bob.st).opks; n != wantOPK {
					t.Fatalf("%d one-time EC prekeys left, want %d", n, wantOPK)
				}
				r1 := bob.encrypt(alice.device, "reply")
				if isPreKey(t, r1) {
					t.Fatal("the responder sent a PreKeySignalMessage")
				}
				// The late PreKeySignalMessage continues bob's session.
				bob.decrypt(alice.device, m2, "two")
				alice.decrypt(bob.device, r1, "reply")
				alice.refused(bob, r1, ratchet.ErrDuplicate)
				for i := range 6 {
					m := alice.encrypt(bob.device, fmt.Sprint("a", i))
					if isPreKey(t, m) {
						t.Fatal("a PreKeySignalMessage after the first reply")
					}
					alice.encrypt(bob.device, "lost")
					bob.decrypt(alice.device, m, fmt.Sprint("a", i))
					r := bob.encrypt(alice.device, fmt.Sprint("b", i))
					late := bob.encrypt(alice.device, fmt.Sprint("late", i))
					bad := bytes.Clone(r)
					bad[10] ^= 0x40
					alice.refused(bob, bad, nil)
					alice.decrypt(bob.device, late, fmt.Sprint("late", i))
					alice.decrypt(bob.device, r, fmt.Sprint("b", i))
				}
				// The stores reopen into the same conversation.
				if b.persistent {
					a2 := &signalDevice{device: newDevice(t, alice.st, "alice", 1, &session.Config{Protocol: ratchet.Signal})}
					a2.decrypt(bob.device, bob.encrypt(alice.device, "after"), "after")
				}
			})
		}
	})
}

// Two Managers on one store: a message the second decrypts is a
// duplicate for the first, which rereads the record.
func TestSignalTwoManagersOneStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		st := b.fresh(t)(t)
		alice := newSignalDevice(t, b.fresh(t)(t), "alice", 1, nil)
		bob := newSignalDevice(t, st, "bob", 2, nil)
		bob2, err := session.New(st, &session.Config{Protocol: ratchet.Signal})
		if err != nil {
			t.Fatal(err)
		}
		alice.start(bob, 0, 0)
		m1, m2 := alice.encrypt(bob.device, "1"), alice.encrypt(bob.device, "2")
		bob.decrypt(alice.device, m1, "1")
		if pt, err := bob2.Decrypt(t.Context(), alice.addr, m2); err != nil || string(pt) != "2" {
			t.Fatalf("second Manager: %q, %v", pt, err)
		}
		if _, err := bob.m.Decrypt(t.Context(), alice.addr, m2); !errors.Is(err, ratchet.ErrDuplicate) {
			t.Fatalf("first Manager after the second: %v", err)
		}
	})
}

// A PreKeySignalMessage replayed once its session is gone is refused by
// the store's used-prekey bookkeeping: a last-resort Kyber prekey's
// triple is recorded, a one-time Kyber prekey is gone.
func TestSignalPreKeyReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		for _, lastResort := range []bool{true, false} {
			t.Run(fmt.Sprintf("lastResort=%v", lastResort), func(t *testing.T) {
				alice := newSignalDevice(t, b.fresh(t)(t), "alice", 1, nil)
				bob := newSignalDevice(t, b.fresh(t)(t), "bob", 2, nil)
				k, want := 0, session.ErrUnknownPreKey
				if lastResort {
					k, want = -1, store.ErrReusedBaseKey
				}
				alice.start(bob, -1, k)
				m := alice.encrypt(bob.device, "hi")
				bob.decrypt(alice.device, m, "hi")
				// While the session is kept, the replay is a duplicate.
				bob.refused(alice, m, ratchet.ErrDuplicate)
				if err := bob.m.DeleteSession(t.Context(), alice.addr); err != nil {
					t.Fatal(err)
				}
				bob.refused(alice, m, want)
				// A new session from another base key on the same
				// last-resort prekey is accepted.
				if lastResort {
					alice.start(bob, -1, -1)
					bob.decrypt(alice.device, alice.encrypt(bob.device, "again"), "again")
				}
			})
		}
	})
}

// A repeated PreKeySignalMessage whose unauthenticated outer fields differ
// from those that started its session is refused (libsignal checks only
// the base key).
func TestSignalPreKeyOuterFields(t *testing.T) {
	alice := newSignalDevice(t, memory.New(), "alice", 1, nil)
	bob := newSignalDevice(t, memory.New(), "bob", 2, nil)
	alice.start(bob, 0, 0)
	m1, m2 := alice.encrypt(bob.device, "1"), alice.encrypt(bob.device, "2")
	bob.decrypt(alice.device, m1, "1")
	pk, _, err := signalwire.ParsePreKeySignalMessage(m2)
	if err != nil {
		t.Fatal(err)
	}
	ct := bytes.Clone(pk.KyberCiphertext)
	ct[100] ^= 1
	pk.KyberCiphertext = ct
	forged, err := pk.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	bob.refused(alice, forged, session.ErrMalformed)
	bob.decrypt(alice.device, m2, "2")
}

// An unanswered session goes stale after MaxUnacknowledgedAge; one that
// was answered does not.
func TestSignalUnacknowledgedAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	alice := newSignalDevice(t, memory.New(), "alice", 1, clock)
	bob := newSignalDevice(t, memory.New(), "bob", 2, clock)
	carol := newSignalDevice(t, memory.New(), "carol", 3, clock)
	alice.start(bob, 0, 0)
	alice.start(carol, 0, 0)
	carol.decrypt(alice.device, alice.encrypt(carol.device, "hi"), "hi")
	alice.decrypt(carol.device, carol.encrypt(alice.device, "ack"), "ack")
	now = now.Add(session.MaxUnacknowledgedAge - time.Hour)
	alice.encrypt(bob.device, "still fresh")
	now = now.Add(2 * time.Hour)
	before := take(t, alice.st, bob.addr)
	if _, err := alice.m.Encrypt(t.Context(), bob.addr, []byte("stale")); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Encrypt on a stale session: %v, want ErrNoSession", err)
	}
	if !take(t, alice.st, bob.addr).equal(before) {
		t.Fatal("the refused Encrypt changed the store")
	}
	alice.encrypt(carol.device, "answered sessions do not go stale")
}

// hideKyber is a store whose transactions lack the Kyber area.
type hideKyber struct{ store.Store }

type plainTx struct{ store.Tx }

func (h hideKyber) View(ctx context.Context, f func(store.Tx) error) error {
	return h.Store.View(ctx, func(tx store.Tx) error { return f(plainTx{tx}) })
}

func (h hideKyber) Update(ctx context.Context, f func(store.Tx) error) error {
	return h.Store.Update(ctx, func(tx store.Tx) error { return f(plainTx{tx}) })
}

func TestSignalNeedsKyberStore(t *testing.T) {
	st := hideKyber{memory.New()}
	m, err := session.New(st, &session.Config{Protocol: ratchet.Signal})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(t.Context(), 1); !errors.Is(err, store.ErrNoKyberPreKeys) {
		t.Fatalf("Init on a store without Kyber prekeys: %v", err)
	}
	// Profile v1 is fine on it.
	m, err = session.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
}

func TestSignalWrongProtocol(t *testing.T) {
	v1 := newDevice(t, memory.New(), "v1", 1, nil)
	sig := newSignalDevice(t, memory.New(), "sig", 2, nil)
	if err := v1.m.StartSignalSession(t.Context(), sig.addr, sig.up.SignalBundle(nil, nil)); !errors.Is(err, session.ErrWrongProtocol) {
		t.Fatalf("StartSignalSession on profile v1: %v", err)
	}
	if err := sig.m.StartSession(t.Context(), v1.addr, sig.up.Bundle(nil)); !errors.Is(err, session.ErrWrongProtocol) {
		t.Fatalf("StartSession on Signal: %v", err)
	}
	for _, cfg := range []session.Config{
		{Protocol: ratchet.Signal, Info: []byte("x")},
		{Protocol: ratchet.Signal, Ratchet: ratchet.Config{MaxSkip: 5}},
		{Protocol: 7},
	} {
		if _, err := session.New(memory.New(), &cfg); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
	// A profile v1 message to a Signal Manager is of an unknown type.
	if _, err := sig.m.Decrypt(t.Context(), v1.addr, make([]byte, 80)); !errors.Is(err, session.ErrUnknownType) {
		t.Fatalf("Decrypt of a non-Signal message: %v", err)
	}
}

// Sessions archived by newer ones still decrypt, and the one that does
// becomes current; the record keeps at most 40 archived.
func TestSignalArchived(t *testing.T) {
	alice := newSignalDevice(t, memory.New(), "alice", 1, nil)
	bob := newSignalDevice(t, memory.New(), "bob", 2, nil)
	alice.start(bob, -1, -1)
	old := alice.encrypt(bob.device, "old")
	bob.decrypt(alice.device, old, "old")
	alice.decrypt(bob.device, bob.encrypt(alice.device, "r"), "r")
	inFlight := alice.encrypt(bob.device, "in flight")
	for i := range 42 {
		alice.start(bob, -1, -1)
		bob.decrypt(alice.device, alice.encrypt(bob.device, fmt.Sprint("new", i)), fmt.Sprint("new", i))
	}
	// 43 sessions were made: the first is no longer kept.
	if _, err := bob.m.Decrypt(t.Context(), alice.addr, inFlight); err == nil {
		t.Fatal("the 43rd-newest session is still kept")
	}
}

// bytes encodes a snapshot of one address for comparison (with several,
// map order would vary): its record and identity and the EC prekeys.
func (s *snapshot) bytes() []byte {
	var b []byte
	for a, r := range s.records {
		b = fmt.Appendf(b, "%v %x|", a, r)
	}
	for a, k := range s.identities {
		b = fmt.Appendf(b, "%v %s|", a, k)
	}
	return fmt.Appendf(b, "%d %d %v", s.opks, s.lastID, s.spks)
}

// TestSignalPromotion: a message on an archived session decrypts and
// makes it current on both sides; a duplicate on an archived session is
// ratchet.ErrDuplicate at once; a tampered one changes nothing.
func TestSignalPromotion(t *testing.T) {
	alice := newSignalDevice(t, memory.New(), "alice", 1, nil)
	bob := newSignalDevice(t, memory.New(), "bob", 2, nil)
	alice.start(bob, 0, 0)
	bob.decrypt(alice.device, alice.encrypt(bob.device, "first"), "first")
	alice.decrypt(bob.device, bob.encrypt(alice.device, "ack"), "ack")
	held := alice.encrypt(bob.device, "held on the first")
	read := alice.encrypt(bob.device, "read on the first")
	bob.decrypt(alice.device, read, "read on the first")

	// Alice starts over; Bob's new session is current.
	alice.start(bob, 1, 1)
	bob.decrypt(alice.device, alice.encrypt(bob.device, "second"), "second")
	bad := bytes.Clone(held)
	bad[len(bad)-1] ^= 1
	bob.refused(alice, bad, nil)
	bob.refused(alice, read, ratchet.ErrDuplicate)
	bob.decrypt(alice.device, held, "held on the first") // promotes the first
	// Bob now answers on the first session, which Alice archived; she
	// reads it there and promotes it too: her next message is no
	// PreKeySignalMessage (the second session never got an answer).
	alice.decrypt(bob.device, bob.encrypt(alice.device, "on the first again"), "on the first again")
	if m := alice.encrypt(bob.device, "converged"); isPreKey(t, m) {
		t.Fatal("Alice still sends on the unanswered second session")
	} else {
		bob.decrypt(alice.device, m, "converged")
	}
}
