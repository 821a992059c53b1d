package session_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// foNet is a key server and the devices registered on it, for fan-out
// tests: it keeps each device's upload, lists each user's devices and
// hands out bundles, each one-time prekey once, failing on request.
type foNet struct {
	t     testing.TB
	proto ratchet.Protocol
	now   func() time.Time
	trust session.TrustPolicy

	mu      sync.Mutex
	devs    map[store.Address]*foDevice // registered, by address
	uploads map[store.Address]*session.PreKeyUpload
	used    map[store.Address]int // one-time prekeys handed out
	fail    map[store.Address]error
	fetched []store.Address
}

// foDevice is a registered device: a Manager over its own store.
type foDevice struct {
	addr store.Address
	st   store.Store
	m    *session.Manager
}

func newFoNet(t testing.TB, proto ratchet.Protocol) *foNet {
	return &foNet{
		t: t, proto: proto,
		devs:    map[store.Address]*foDevice{},
		uploads: map[store.Address]*session.PreKeyUpload{},
		used:    map[store.Address]int{},
		fail:    map[store.Address]error{},
	}
}

func (n *foNet) config(id uint32) *session.Config {
	return &session.Config{Protocol: n.proto, RegistrationID: 1000 + id, OneTimePreKeys: 3, MinOneTimePreKeys: 1, Now: n.now, Trust: n.trust}
}

// add registers a device on a memory store (or on st, if given): a new
// identity and an upload. Registering an address again replaces its
// device (a reinstall).
func (n *foNet) add(name string, id uint32, st store.Store) *foDevice {
	n.t.Helper()
	if st == nil {
		st = memory.New()
	}
	m, err := session.New(st, n.config(id))
	if err != nil {
		n.t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Init(ctx, id); err != nil {
		n.t.Fatal(err)
	}
	up, err := m.Upkeep(ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	d := &foDevice{addr: store.Address{Name: name, DeviceID: id}, st: st, m: m}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.devs[d.addr], n.uploads[d.addr], n.used[d.addr] = d, up, 0
	return d
}

// remove unregisters a device: the server no longer lists it nor hands
// out its bundle.
func (n *foNet) remove(addr store.Address) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.devs, addr)
	delete(n.uploads, addr)
}

// list is the server's device list of name.
func (n *foNet) list(name string) session.DeviceList {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := session.DeviceList{Name: name}
	for a := range n.devs {
		if a.Name == name {
			l.Devices = append(l.Devices, a.DeviceID)
		}
	}
	slices.Sort(l.Devices)
	return l
}

var errNoDevice = errors.New("test server: no such device")

// fetch is the BundleFetcher: one-time prekeys while there are any.
func (n *foNet) fetch(ctx context.Context, addr store.Address) (session.Bundle, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fetched = append(n.fetched, addr)
	if err := n.fail[addr]; err != nil {
		return session.Bundle{}, err
	}
	up := n.uploads[addr]
	if up == nil {
		return session.Bundle{}, errNoDevice
	}
	i := n.used[addr]
	n.used[addr]++
	var opk *session.PublicPreKey
	if i < len(up.OneTimePreKeys) {
		opk = &up.OneTimePreKeys[i]
	}
	if n.proto == ratchet.Signal {
		var kpk *session.PublicKyberPreKey
		if i < len(up.KyberOneTimePreKeys) {
			kpk = &up.KyberOneTimePreKeys[i]
		}
		return session.Bundle{PQXDH: up.SignalBundle(opk, kpk)}, nil
	}
	return session.Bundle{X3DH: up.Bundle(opk)}, nil
}

// takeFetched returns and forgets the addresses fetched so far.
func (n *foNet) takeFetched() []store.Address {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.fetched
	n.fetched = nil
	return f
}

// fanout sends pt from d to the server's lists of the users in to (d's
// own user's list included if listed), failing the test on a call error.
func (n *foNet) fanout(d *foDevice, pt string, to ...string) *session.FanoutReport {
	n.t.Helper()
	var lists []session.DeviceList
	for _, name := range to {
		lists = append(lists, n.list(name))
	}
	rep, err := d.m.EncryptToDevices(context.Background(), d.addr, lists, []byte(pt), n.fetch)
	if err != nil {
		n.t.Fatalf("%v: EncryptToDevices: %v", d.addr, err)
	}
	return rep
}

// deliver decrypts every message of rep at its device, each exactly once,
// checks the plaintext, and checks that a second delivery is refused as a
// duplicate.
func (n *foNet) deliver(from *foDevice, rep *session.FanoutReport, pt string) {
	n.t.Helper()
	ctx := context.Background()
	for _, s := range rep.Sent {
		n.mu.Lock()
		d := n.devs[s.Address]
		n.mu.Unlock()
		if d == nil {
			n.t.Fatalf("message for %v, which is not registered", s.Address)
		}
		got, err := d.m.Decrypt(ctx, from.addr, s.Message)
		if err != nil || string(got) != pt {
			n.t.Fatalf("%v decrypting from %v: %q, %v; want %q", s.Address, from.addr, got, err, pt)
		}
		if _, err := d.m.Decrypt(ctx, from.addr, s.Message); !errors.Is(err, ratchet.ErrDuplicate) {
			n.t.Fatalf("%v: a second delivery: %v, want ratchet.ErrDuplicate", s.Address, err)
		}
	}
}

// addrs returns the addresses of rep's sent messages, failures and stale
// devices.
func sentTo(rep *session.FanoutReport) []store.Address {
	var out []store.Address
	for _, s := range rep.Sent {
		out = append(out, s.Address)
	}
	return out
}

func failedAt(rep *session.FanoutReport) []store.Address {
	var out []store.Address
	for _, f := range rep.Failed {
		out = append(out, f.Address)
	}
	return out
}

func addrs(name string, ids ...uint32) []store.Address {
	var out []store.Address
	for _, id := range ids {
		out = append(out, store.Address{Name: name, DeviceID: id})
	}
	return out
}

func wantAddrs(t testing.TB, what string, got []store.Address, want ...[]store.Address) {
	t.Helper()
	w := slices.Concat(want...)
	if !slices.Equal(got, w) {
		t.Fatalf("%s: %v, want %v", what, got, w)
	}
}

// prekeyType is the FanoutMessage.Type of a message that starts a
// session, ratchetType that of one on an answered session.
func prekeyType(p ratchet.Protocol) int {
	if p == ratchet.Signal {
		return session.SignalTypePreKey
	}
	return 0x02
}

func ratchetType(p ratchet.Protocol) int {
	if p == ratchet.Signal {
		return session.SignalTypeWhisper
	}
	return 0x01
}

func forEachProtocol(t *testing.T, f func(t *testing.T, p ratchet.Protocol)) {
	for _, p := range []ratchet.Protocol{ratchet.ProfileV1, ratchet.Signal} {
		name := "v1"
		if p == ratchet.Signal {
			name = "Signal"
		}
		t.Run(name, func(t *testing.T) { f(t, p) })
	}
}

// TestFanout: Alice's device 1 writes to Bob (two devices) and to her own
// other devices; new sessions from fetched bundles, then sessions reused,
// a device added, one removed, then replies turn prekey messages into
// ratchet messages.
func TestFanout(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p ratchet.Protocol) {
		n := newFoNet(t, p)
		a1, a2 := n.add("alice", 1, nil), n.add("alice", 2, nil)
		b1, _ := n.add("bob", 1, nil), n.add("bob", 2, nil)

		rep := n.fanout(a1, "one", "bob", "alice")
		wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 2), addrs("alice", 2))
		wantAddrs(t, "fetched", n.takeFetched(), addrs("bob", 1, 2), addrs("alice", 2))
		if len(rep.Failed)+len(rep.Stale) != 0 {
			t.Fatalf("failed %v, stale %v", rep.Failed, rep.Stale)
		}
		for _, s := range rep.Sent {
			if !s.Started || s.Type != prekeyType(p) {
				t.Fatalf("%v: started %v, type %d", s.Address, s.Started, s.Type)
			}
		}
		n.deliver(a1, rep, "one")

		// Sessions exist now: nothing fetched. Bob gets a third device.
		b3 := n.add("bob", 3, nil)
		rep = n.fanout(a1, "two", "bob", "alice")
		wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 2, 3), addrs("alice", 2))
		wantAddrs(t, "fetched", n.takeFetched(), addrs("bob", 3))
		for _, s := range rep.Sent {
			if s.Started != (s.Address == b3.addr) {
				t.Fatalf("%v: started %v", s.Address, s.Started)
			}
		}
		n.deliver(a1, rep, "two")

		// Bob's device 2 is gone: reported stale, its session kept.
		n.remove(store.Address{Name: "bob", DeviceID: 2})
		rep = n.fanout(a1, "three", "bob", "alice")
		wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 3), addrs("alice", 2))
		wantAddrs(t, "stale", rep.Stale, addrs("bob", 2))
		wantAddrs(t, "fetched", n.takeFetched())
		if ok, err := a1.m.HasSession(t.Context(), rep.Stale[0]); !ok || err != nil {
			t.Fatalf("the stale device's session: %v, %v", ok, err)
		}
		n.deliver(a1, rep, "three")

		// Bob's device 1 and Alice's device 2 answer; then a1's messages
		// to them are ratchet messages, to b3 still prekey messages.
		for _, d := range []*foDevice{b1, a2} {
			r, err := d.m.Encrypt(t.Context(), a1.addr, []byte("reply"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := a1.m.Decrypt(t.Context(), d.addr, r); err != nil || string(pt) != "reply" {
				t.Fatalf("reply from %v: %q, %v", d.addr, pt, err)
			}
		}
		rep = n.fanout(a1, "four", "bob", "alice")
		for _, s := range rep.Sent {
			want := ratchetType(p)
			if s.Address == b3.addr {
				want = prekeyType(p)
			}
			if s.Type != want || s.Started {
				t.Fatalf("%v: type %d, started %v; want type %d", s.Address, s.Type, s.Started, want)
			}
		}
		n.deliver(a1, rep, "four")

		// From Alice's second device: device 1 is now the other one.
		rep = n.fanout(a2, "five", "bob", "alice")
		wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 3), addrs("alice", 1))
		n.deliver(a2, rep, "five")
	})
}

// TestFanoutFailures: one failure of each kind in one fan-out, none of
// which stops the others or leaves anything behind.
func TestFanoutFailures(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p ratchet.Protocol) {
		ctx := t.Context()
		n := newFoNet(t, p)
		a1 := n.add("alice", 1, nil)
		for id := uint32(1); id <= 5; id++ {
			n.add("bob", id, nil)
		}
		// bob/2 has a session that a1 then loses, and reinstalls: its
		// new identity key is not the trusted one.
		rep := n.fanout(a1, "hello", "bob")
		n.deliver(a1, rep, "hello")
		if err := a1.m.DeleteSession(ctx, store.Address{Name: "bob", DeviceID: 2}); err != nil {
			t.Fatal(err)
		}
		old, err := a1.m.Identity(ctx, store.Address{Name: "bob", DeviceID: 2})
		if err != nil {
			t.Fatal(err)
		}
		n.add("bob", 2, nil)
		// bob/3's bundle fetch fails; bob/4 never had a session and its
		// bundle is of the other protocol; bob/5's is forged.
		for id := uint32(3); id <= 5; id++ {
			if err := a1.m.DeleteSession(ctx, store.Address{Name: "bob", DeviceID: id}); err != nil {
				t.Fatal(err)
			}
		}
		fetchErr := errors.New("server unavailable")
		n.fail[store.Address{Name: "bob", DeviceID: 3}] = fetchErr
		before := take(t, a1.st, addrs("bob", 2, 3, 4, 5)...)
		fetch := func(ctx context.Context, addr store.Address) (session.Bundle, error) {
			b, err := n.fetch(ctx, addr)
			switch addr.DeviceID {
			case 4:
				b.X3DH, b.PQXDH = nil, nil
				if p == ratchet.ProfileV1 {
					b.PQXDH = new(pqxdh.Bundle)
				} else {
					b.X3DH = new(x3dh.Bundle)
				}
			case 5:
				// A copy: the server's upload stays good.
				if b.X3DH != nil {
					c := *b.X3DH
					c.SignedPreKeySignature = slices.Clone(c.SignedPreKeySignature)
					c.SignedPreKeySignature[0] ^= 1
					b.X3DH = &c
				} else {
					c := *b.PQXDH
					c.SignedPreKeySignature = slices.Clone(c.SignedPreKeySignature)
					c.SignedPreKeySignature[0] ^= 1
					b.PQXDH = &c
				}
			}
			return b, err
		}
		rep, err = a1.m.EncryptToDevices(ctx, a1.addr, []session.DeviceList{n.list("bob")}, []byte("again"), fetch)
		if err != nil {
			t.Fatal(err)
		}
		wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1))
		wantAddrs(t, "failed", failedAt(rep), addrs("bob", 2, 3, 4, 5))
		var idErr *session.IdentityError
		checks := []struct {
			ok   bool
			what string
		}{
			{errors.As(rep.Failed[0].Err, &idErr) && idErr.Trusted.Equal(old) && !idErr.Received.Equal(old), "bob/2: *IdentityError with the old and new keys"},
			{errors.Is(rep.Failed[1].Err, session.ErrBundleFetch) && errors.Is(rep.Failed[1].Err, fetchErr), "bob/3: ErrBundleFetch wrapping the fetcher's error"},
			{errors.Is(rep.Failed[2].Err, session.ErrBundleFetch), "bob/4: ErrBundleFetch"},
			{errors.Is(rep.Failed[3].Err, x3dh.ErrInvalidSignature) || errors.Is(rep.Failed[3].Err, pqxdh.ErrInvalidSignature), "bob/5: invalid signature"},
		}
		for _, c := range checks {
			if !c.ok {
				t.Errorf("%s; got %v", c.what, rep.Failed)
			}
		}
		// Only bob/1's record changed.
		if !take(t, a1.st, addrs("bob", 2, 3, 4, 5)...).equal(before) {
			t.Fatal("a failed device's state changed")
		}
		n.deliver(a1, rep, "again")

		// Approved, bob/2 gets the next message; the others once fixed.
		if err := a1.m.ApproveIdentity(ctx, idErr.Address, idErr.Received); err != nil {
			t.Fatal(err)
		}
		delete(n.fail, store.Address{Name: "bob", DeviceID: 3})
		rep = n.fanout(a1, "fixed", "bob")
		wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 2, 3, 4, 5))
		n.deliver(a1, rep, "fixed")

		// No fetcher: only devices with sessions are reached.
		n.add("bob", 6, nil)
		rep, err = a1.m.EncryptToDevices(ctx, store.Address{}, []session.DeviceList{n.list("bob")}, []byte("no fetcher"), nil)
		if err != nil {
			t.Fatal(err)
		}
		wantAddrs(t, "failed", failedAt(rep), addrs("bob", 6))
		if !errors.Is(rep.Failed[0].Err, session.ErrBundleFetch) {
			t.Fatal(rep.Failed[0].Err)
		}
	})
}

// TestFanoutUntrustedNewDevice: under TrustExplicit a new device's
// bundle is refused until its key is approved; nothing is saved for it.
func TestFanoutUntrustedNewDevice(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p ratchet.Protocol) {
		n := newFoNet(t, p)
		n.trust = session.TrustExplicit
		a1 := n.add("alice", 1, nil)
		b1 := n.add("bob", 1, nil)
		rep := n.fanout(a1, "hi", "bob")
		var idErr *session.IdentityError
		if len(rep.Failed) != 1 || !errors.As(rep.Failed[0].Err, &idErr) || idErr.Trusted != nil {
			t.Fatalf("failed: %v", rep.Failed)
		}
		if ok, _ := a1.m.HasSession(t.Context(), b1.addr); ok {
			t.Fatal("a session saved for a refused identity")
		}
		pub, _, err := b1.m.LocalIdentity(t.Context())
		if err != nil || !idErr.Received.Equal(pub) {
			t.Fatal("the error does not carry the bundle's key", err)
		}
		if err := a1.m.ApproveIdentity(t.Context(), b1.addr, pub); err != nil {
			t.Fatal(err)
		}
		apub, _, err := a1.m.LocalIdentity(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := b1.m.ApproveIdentity(t.Context(), a1.addr, apub); err != nil {
			t.Fatal(err)
		}
		rep = n.fanout(a1, "hi", "bob")
		wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1))
		n.deliver(a1, rep, "hi")
	})
}

// TestFanoutStaleSignalSession: a Signal session unanswered for
// MaxUnacknowledgedAge is replaced by one from a freshly fetched bundle.
func TestFanoutStaleSignalSession(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	n := newFoNet(t, ratchet.Signal)
	n.now = func() time.Time { return clock }
	a1 := n.add("alice", 1, nil)
	n.add("bob", 1, nil)
	n.deliver(a1, n.fanout(a1, "first", "bob"), "first")
	n.takeFetched()
	clock = clock.Add(session.MaxUnacknowledgedAge + time.Hour)
	rep := n.fanout(a1, "later", "bob")
	wantAddrs(t, "fetched", n.takeFetched(), addrs("bob", 1))
	if len(rep.Sent) != 1 || !rep.Sent[0].Started {
		t.Fatalf("sent %v, failed %v", rep.Sent, rep.Failed)
	}
	n.deliver(a1, rep, "later")
}

// TestFanoutArguments: the errors that stop the whole call, and the
// lists' duplicates.
func TestFanoutArguments(t *testing.T) {
	n := newFoNet(t, ratchet.ProfileV1)
	a1 := n.add("alice", 1, nil)
	n.add("bob", 1, nil)
	n.add("bob", 2, nil)
	ctx := t.Context()
	if _, err := a1.m.EncryptToDevices(ctx, a1.addr, nil, make([]byte, session.DefaultMaxMessageSize+1), n.fetch); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	m, err := session.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.EncryptToDevices(ctx, store.Address{Name: "x", DeviceID: 1}, []session.DeviceList{n.list("bob")}, nil, n.fetch)
	if err != nil || len(rep.Failed) != 2 || !errors.Is(rep.Failed[0].Err, store.ErrNotFound) {
		t.Fatalf("before Init: %v, %+v", err, rep)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a1.m.EncryptToDevices(done, a1.addr, []session.DeviceList{n.list("bob")}, nil, n.fetch); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	// Listed twice, in two lists and in disorder: one message each.
	lists := []session.DeviceList{{Name: "bob", Devices: []uint32{2, 1, 2}}, {Name: "bob", Devices: []uint32{1}}, {Name: "alice", Devices: []uint32{1}}}
	rep, err = a1.m.EncryptToDevices(ctx, a1.addr, lists, []byte("once"), n.fetch)
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 2))
	if len(rep.Failed)+len(rep.Stale) != 0 {
		t.Fatalf("failed %v, stale %v", rep.Failed, rep.Stale)
	}
	n.deliver(a1, rep, "once")
	// Without self, the own device is a device like any other: it has
	// no bundle here (the test server's lists have it, its bundle
	// fetch is refused).
	n.fail[a1.addr] = errNoDevice
	rep, err = a1.m.EncryptToDevices(ctx, store.Address{}, []session.DeviceList{n.list("alice")}, []byte("self"), n.fetch)
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs(t, "failed", failedAt(rep), addrs("alice", 1))
}

// TestFanoutStores: the sender's store is each backend.
func TestFanoutStores(t *testing.T) {
	forEachStore(t, func(t *testing.T, b backend) {
		forEachProtocol(t, func(t *testing.T, p ratchet.Protocol) {
			n := newFoNet(t, p)
			a1 := n.add("alice", 1, b.fresh(t)(t))
			n.add("alice", 2, nil)
			n.add("bob", 1, nil)
			n.add("bob", 7, nil)
			for i := range 3 {
				pt := fmt.Sprint("message ", i)
				rep := n.fanout(a1, pt, "bob", "alice")
				wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 7), addrs("alice", 2))
				n.deliver(a1, rep, pt)
			}
		})
	})
}

// TestFanoutRandom is a seeded run: users whose devices come and go,
// random senders among them, replies; every fan-out message is decrypted
// by its device exactly once, in a shuffled order, and every registered
// device of the recipient and of the sender (but the sender) gets one.
func TestFanoutRandom(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		forEachProtocol(t, func(t *testing.T, p ratchet.Protocol) {
			rng := mathrand.New(mathrand.NewPCG(seed, 14))
			n := newFoNet(t, p)
			users := []string{"alice", "bob", "carol"}
			next := map[string]uint32{}
			addDevice := func(name string) {
				next[name]++
				n.add(name, next[name], nil)
			}
			for _, u := range users {
				addDevice(u)
				addDevice(u)
			}
			type pending struct {
				from *foDevice
				msg  session.FanoutMessage
				pt   string
			}
			var queue []pending
			flush := func() {
				rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
				for _, q := range queue {
					d := n.devs[q.msg.Address]
					if d == nil {
						continue // removed meanwhile
					}
					pt, err := d.m.Decrypt(t.Context(), q.from.addr, q.msg.Message)
					if err != nil || string(pt) != q.pt {
						t.Fatalf("seed %d: %v from %v: %q, %v; want %q", seed, q.msg.Address, q.from.addr, pt, err, q.pt)
					}
				}
				for _, q := range queue {
					if d := n.devs[q.msg.Address]; d != nil {
						if _, err := d.m.Decrypt(t.Context(), q.from.addr, q.msg.Message); !errors.Is(err, ratchet.ErrDuplicate) {
							t.Fatalf("seed %d: replay at %v: %v", seed, q.msg.Address, err)
						}
					}
				}
				queue = queue[:0]
			}
			for step := range 60 {
				switch r := rng.IntN(10); {
				case r == 0:
					addDevice(users[rng.IntN(len(users))])
				case r == 1:
					l := n.list(users[rng.IntN(len(users))])
					if len(l.Devices) > 1 {
						n.remove(store.Address{Name: l.Name, DeviceID: l.Devices[rng.IntN(len(l.Devices))]})
					}
				case r <= 3:
					flush()
				}
				from := users[rng.IntN(len(users))]
				to := users[rng.IntN(len(users))]
				l := n.list(from)
				sender := n.devs[store.Address{Name: from, DeviceID: l.Devices[rng.IntN(len(l.Devices))]}]
				pt := fmt.Sprintf("step %d", step)
				rep := n.fanout(sender, pt, to, from)
				if len(rep.Failed) != 0 {
					t.Fatalf("seed %d step %d: failed %v", seed, step, rep.Failed)
				}
				want := map[store.Address]bool{}
				for _, name := range []string{to, from} {
					for _, id := range n.list(name).Devices {
						a := store.Address{Name: name, DeviceID: id}
						if a != sender.addr {
							want[a] = true
						}
					}
				}
				if len(rep.Sent) != len(want) {
					t.Fatalf("seed %d step %d: sent to %v, want %v", seed, step, sentTo(rep), want)
				}
				for _, s := range rep.Sent {
					if !want[s.Address] {
						t.Fatalf("seed %d step %d: sent to %v", seed, step, s.Address)
					}
					queue = append(queue, pending{sender, s, pt})
				}
			}
			flush()
		})
	}
}

// TestFanoutConcurrent: fan-outs from one Manager to the same devices at
// once, beside single Encrypts; every message decrypts once.
func TestFanoutConcurrent(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p ratchet.Protocol) {
		n := newFoNet(t, p)
		a1 := n.add("alice", 1, nil)
		for id := uint32(1); id <= 4; id++ {
			n.add("bob", id, nil)
		}
		n.add("alice", 2, nil)
		const workers, rounds = 4, 5
		var mu sync.Mutex
		var reps []*session.FanoutReport
		var pts []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					pt := fmt.Sprintf("w%d r%d", w, r)
					rep, err := a1.m.EncryptToDevices(context.Background(), a1.addr, []session.DeviceList{n.list("bob"), n.list("alice")}, []byte(pt), n.fetch)
					if err != nil || len(rep.Failed) != 0 || len(rep.Sent) != 5 {
						t.Errorf("%s: %v, %+v", pt, err, rep)
						return
					}
					mu.Lock()
					reps, pts = append(reps, rep), append(pts, pt)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		// Concurrent first fan-outs may each start a session with the
		// same device: the later one is current, and the devices read
		// the messages of both.
		for i, rep := range reps {
			n.deliver(a1, rep, pts[i])
		}
	})
}

// TestFanoutCrossedStarts: two devices new to each other fan out at once,
// each starting a session with the other, before either message arrives;
// then both sessions' messages, and the replies, are read.
func TestFanoutCrossedStarts(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p ratchet.Protocol) {
		n := newFoNet(t, p)
		a := n.add("a", 1, nil)
		b := n.add("b", 1, nil)
		ab := n.fanout(a, "a0", "b")
		ba := n.fanout(b, "b0", "a")
		n.deliver(a, ab, "a0")
		n.deliver(b, ba, "b0")
		n.deliver(b, n.fanout(b, "b1", "a"), "b1")
		n.deliver(a, n.fanout(a, "a1", "b"), "a1")
	})
}

// TestLiveFanout: a Go Signal Manager fans out to a user with two
// libsignal devices and a Go one, starting every session from a fetched
// bundle; libsignal reads its PreKeySignalMessages and answers, and the
// next fan-out's messages to it are SignalMessages that it reads too.
func TestLiveFanout(t *testing.T) {
	v := libsignaltest.Load(t)
	n := newFoNet(t, ratchet.Signal)
	sender := n.add("go-alice", 1, nil)
	goBob := n.add("bob", 3, nil)
	peers := map[store.Address]*libsignaltest.Peer{}
	bundles := map[store.Address]*pqxdh.Bundle{}
	for i := range 2 {
		p := libsignaltest.Live(t, v.Sessions[i].Name)
		// liveGoInitiator converts the vectors' bundle; its own Go device
		// is not used here, and libsignal has seen nothing of it.
		d, _, _, _ := liveGoInitiator(t, p, &v.Sessions[i], nil)
		a := store.Address{Name: "bob", DeviceID: uint32(i + 1)}
		peers[a], bundles[a] = p, d.bundle
		n.devs[a] = nil // listed by the server, read by libsignal
	}
	fetch := func(ctx context.Context, a store.Address) (session.Bundle, error) {
		if b := bundles[a]; b != nil {
			return session.Bundle{PQXDH: b}, nil
		}
		return n.fetch(ctx, a)
	}
	ctx := t.Context()
	for round, want := range []int{session.SignalTypePreKey, session.SignalTypeWhisper} {
		pt := fmt.Sprintf("fan-out %d", round)
		rep, err := sender.m.EncryptToDevices(ctx, sender.addr, []session.DeviceList{n.list("bob")}, []byte(pt), fetch)
		if err != nil || len(rep.Failed) != 0 || len(rep.Sent) != 3 {
			t.Fatalf("round %d: %v, %+v", round, err, rep)
		}
		for _, s := range rep.Sent {
			if s.Started != (round == 0) {
				t.Fatalf("round %d, %v: started %v", round, s.Address, s.Started)
			}
			if s.Address == goBob.addr {
				got, err := goBob.m.Decrypt(ctx, sender.addr, s.Message)
				if err != nil || string(got) != pt {
					t.Fatalf("Go device: %q, %v", got, err)
				}
				continue
			}
			if s.Type != want {
				t.Fatalf("round %d, %v: type %d, want %d", round, s.Address, s.Type, want)
			}
			p := peers[s.Address]
			var ok bool
			if err := signallive.CheckReply(p.Call(map[string]any{"op": "decrypt", "from": "go-alice", "type": s.Type, "wire": hex.EncodeToString(s.Message)}), []byte(pt), &ok); err != nil || !ok {
				t.Fatalf("libsignal %v: %v", s.Address, err)
			}
			if round == 0 {
				r := p.Call(map[string]any{"op": "encrypt", "to": "go-alice", "plaintext": hex.EncodeToString([]byte("ack"))})
				if !r.OK {
					t.Fatalf("libsignal encrypt: %s", r.Error)
				}
				if got, err := sender.m.Decrypt(ctx, s.Address, libsignaltest.Hex(t, r.Wire)); err != nil || string(got) != "ack" {
					t.Fatalf("libsignal's answer: %q, %v", got, err)
				}
			}
		}
	}
}

// TestFanoutNameInTwoLists: a name whose devices come in two lists is
// one user's list split in two; a device of the second list is sent to,
// not reported stale because the first list left it out.
func TestFanoutNameInTwoLists(t *testing.T) {
	n := newFoNet(t, ratchet.ProfileV1)
	a1 := n.add("alice", 1, nil)
	n.add("bob", 1, nil)
	n.add("bob", 2, nil)
	n.deliver(a1, n.fanout(a1, "start", "bob"), "start")
	lists := []session.DeviceList{{Name: "bob", Devices: []uint32{1}}, {Name: "bob", Devices: []uint32{2}}}
	rep, err := a1.m.EncryptToDevices(t.Context(), a1.addr, lists, []byte("split"), n.fetch)
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1, 2))
	wantAddrs(t, "stale", rep.Stale)
	n.deliver(a1, rep, "split")
}

// TestFanoutHugeList: the lists are the server's word, so a list of many
// repeated or unknown device ids must not buy an allocation of their
// number times the plaintext: what the call allocates stays near what it
// returns.
func TestFanoutHugeList(t *testing.T) {
	n := newFoNet(t, ratchet.ProfileV1)
	a1 := n.add("alice", 1, nil)
	n.add("bob", 1, nil)
	n.deliver(a1, n.fanout(a1, "start", "bob"), "start")
	const count = 4096
	repeated := session.DeviceList{Name: "bob", Devices: make([]uint32, count)}
	for i := range repeated.Devices {
		repeated.Devices[i] = 1
	}
	unknown := session.DeviceList{Name: "carol"}
	for id := range uint32(count) {
		unknown.Devices = append(unknown.Devices, id+1)
	}
	pt := make([]byte, 16<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := a1.m.EncryptToDevices(t.Context(), a1.addr, []session.DeviceList{repeated, unknown}, pt, nil)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1))
	if len(rep.Failed) != count {
		t.Fatalf("%d failed, want %d", len(rep.Failed), count)
	}
	// count*len(pt) is 64 MiB; one message and the failures take a few.
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("EncryptToDevices allocated %d MiB for one message of %d KiB", got>>20, len(pt)>>10)
	}
}

// TestFanoutListShrunk: sessions kept from a longer list of old (stale
// now) do not size the call's allocation either: one device listed, one
// message's worth.
func TestFanoutListShrunk(t *testing.T) {
	n := newFoNet(t, ratchet.ProfileV1)
	a1 := n.add("alice", 1, nil)
	for id := uint32(1); id <= 64; id++ {
		n.add("bob", id, nil)
	}
	n.fanout(a1, "start", "bob")
	pt := make([]byte, 64<<10)
	one := []session.DeviceList{{Name: "bob", Devices: []uint32{1}}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := a1.m.EncryptToDevices(t.Context(), a1.addr, one, pt, nil)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs(t, "sent", sentTo(rep), addrs("bob", 1))
	if len(rep.Stale) != 63 {
		t.Fatalf("%d stale, want 63", len(rep.Stale))
	}
	// 64 messages' room would be 4 MiB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("EncryptToDevices allocated %d KiB for one message of %d KiB", got>>10, len(pt)>>10)
	}
}
