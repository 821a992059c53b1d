package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// Wire constants, declared here rather than taken from the package.
const (
	typeRatchet   = 0x01
	typePreKey    = 0x02
	minMessage    = 58
	preKeyFixed   = 72 // without opk_id
	preKeyFixedOK = 76 // with opk_id
)

// device is one party: a Manager over its own store.
type device struct {
	t    testing.TB
	addr store.Address
	st   store.Store
	m    *session.Manager
}

func newDevice(t testing.TB, st store.Store, name string, id uint32, cfg *session.Config) *device {
	t.Helper()
	m, err := session.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	return &device{t: t, addr: store.Address{Name: name, DeviceID: id}, st: st, m: m}
}

// server plays the key server: it keeps each device's upload and hands
// out every one-time prekey once.
type server struct {
	mu      sync.Mutex
	uploads map[store.Address]*session.PreKeyUpload
	opks    map[store.Address][]session.PublicPreKey
}

func newServer() *server {
	return &server{uploads: map[store.Address]*session.PreKeyUpload{}, opks: map[store.Address][]session.PublicPreKey{}}
}

// publish runs the device's upkeep and stores what it uploads.
func (s *server) publish(t testing.TB, d *device) {
	t.Helper()
	u, err := d.m.Upkeep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.uploads[d.addr]; old != nil && !old.IdentityKey.Equal(u.IdentityKey) {
		// A device registered again: its old prekeys are gone.
		s.opks[d.addr] = nil
	}
	s.uploads[d.addr] = u
	s.opks[d.addr] = append(s.opks[d.addr], u.OneTimePreKeys...)
}

// bundle returns a bundle for addr, with a one-time prekey while any is
// left and withOPK is set.
func (s *server) bundle(t testing.TB, addr store.Address, withOPK bool) *x3dh.Bundle {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[addr]
	if u == nil {
		t.Fatalf("no upload for %v", addr)
	}
	q := s.opks[addr]
	if !withOPK || len(q) == 0 {
		return u.Bundle(nil)
	}
	s.opks[addr] = q[1:]
	return u.Bundle(&q[0])
}

// connect has a start a session with b from b's published bundle.
func connect(t testing.TB, srv *server, a, b *device) {
	t.Helper()
	if err := a.m.StartSession(t.Context(), b.addr, srv.bundle(t, b.addr, true)); err != nil {
		t.Fatalf("%v starting a session with %v: %v", a.addr, b.addr, err)
	}
}

func (d *device) encrypt(to *device, pt string) []byte {
	d.t.Helper()
	msg, err := d.m.Encrypt(d.t.Context(), to.addr, []byte(pt))
	if err != nil {
		d.t.Fatalf("%v encrypting for %v: %v", d.addr, to.addr, err)
	}
	return msg
}

func (d *device) decrypt(from *device, msg []byte, want string) {
	d.t.Helper()
	pt, err := d.m.Decrypt(d.t.Context(), from.addr, msg)
	if err != nil {
		d.t.Fatalf("%v decrypting from %v: %v", d.addr, from.addr, err)
	}
	if string(pt) != want {
		d.t.Fatalf("%v decrypted %q from %v, want %q", d.addr, pt, from.addr, want)
	}
}

// snapshot is everything a store holds that the tests can read through
// the store interfaces.
type snapshot struct {
	records    map[store.Address][]byte
	identities map[store.Address]string
	opks       int
	lastID     uint32
	spks       []store.SignedPreKeyInfo
}

func (s *snapshot) equal(o *snapshot) bool {
	if len(s.records) != len(o.records) || len(s.identities) != len(o.identities) {
		return false
	}
	for a, r := range s.records {
		if or, ok := o.records[a]; !ok || !bytes.Equal(r, or) {
			return false
		}
	}
	for a, k := range s.identities {
		if o.identities[a] != k {
			return false
		}
	}
	return s.opks == o.opks && s.lastID == o.lastID && slices.Equal(s.spks, o.spks)
}

// take reads st's state for the given addresses.
func take(t testing.TB, st store.Store, addrs ...store.Address) *snapshot {
	t.Helper()
	ctx := context.Background()
	s := &snapshot{records: map[store.Address][]byte{}, identities: map[store.Address]string{}}
	err := st.View(ctx, func(tx store.Tx) error {
		for _, a := range addrs {
			rec, err := tx.Sessions().Load(ctx, a)
			if err == nil {
				s.records[a] = rec
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			k, err := tx.Identities().Load(ctx, a)
			if err == nil {
				s.identities[a] = fmt.Sprintf("%x", k.Encode())
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		var err error
		if s.opks, err = tx.PreKeys().Count(ctx); err != nil {
			return err
		}
		if s.lastID, err = tx.PreKeys().LastID(ctx); err != nil {
			return err
		}
		s.spks, err = tx.SignedPreKeys().List(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kind maps an error to the error kinds of PROTOCOL.md section 8, as a
// conformance driver would.
func kind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, keys.ErrInvalidPublicKey), errors.Is(err, keys.ErrSmallOrder):
		return "bad_key"
	case errors.Is(err, x3dh.ErrInvalidSignature):
		return "invalid_signature"
	case errors.Is(err, session.ErrMalformed), errors.Is(err, x3dh.ErrMalformed):
		return "malformed"
	case errors.Is(err, session.ErrUnknownType):
		return "unknown_type"
	case errors.Is(err, ratchet.ErrAuthentication):
		return "auth_failed"
	case errors.Is(err, ratchet.ErrDuplicate):
		return "duplicate"
	case errors.Is(err, ratchet.ErrTooManySkipped):
		return "too_many_skipped"
	case errors.Is(err, session.ErrUnknownPreKey):
		return "unknown_prekey"
	case errors.Is(err, session.ErrNoSession):
		return "no_session"
	case errors.Is(err, ratchet.ErrCounterOverflow):
		return "counter_overflow"
	case errors.Is(err, session.ErrUntrustedIdentity):
		return "untrusted_identity"
	}
	return "other: " + err.Error()
}

// innerHeader returns the 42-byte ratchet header of a ratchet or prekey
// message.
func innerHeader(msg []byte) []byte {
	off := 0
	if msg[0] == typePreKey {
		off = preKeyFixed
		if msg[1]&1 != 0 {
			off = preKeyFixedOK
		}
	}
	return msg[off : off+42]
}
