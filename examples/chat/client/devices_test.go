package client

import (
	"testing"
	"time"
)

func (r *recorder) has(kind EventKind, peer string, dev uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Kind == kind && e.Peer == peer && e.Device == dev {
			return true
		}
	}
	return false
}

// A device that joins with the link code gets the account's identity key
// and the account's safety number; a device the server adds on its own
// (here: one that joins with a valid code but a key of its own, which is
// all a server could give it) is sent nothing, by contacts or by the
// account's own devices, and its messages are held as an identity change.
func TestDeviceIdentityKeys(t *testing.T) {
	ts := newServer(t)
	var ra, rb, rp, rf recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.openWith(t, t.TempDir(), "bob", &rb, func(c *Config) { c.DeviceListTTL = -1 })
	for _, c := range []*Client{alice, bob} {
		if err := c.Connect(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Send(ctx(t), "bob", "hello bob"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob to read alice", func() bool { return len(rb.texts("alice")) == 1 })

	code, err := alice.LinkCode(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := linkKeys(code + "a"); err == nil {
		t.Fatal("a mistyped link code was taken")
	}
	phone := ts.openWith(t, t.TempDir(), "alice", &rp, func(c *Config) { c.Link = code })
	if err := phone.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := bob.Send(ctx(t), "alice", "hello alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the phone to read bob", func() bool { return len(rp.texts("bob")) == 1 })
	a, _ := bob.DeviceSafetyNumber(ctx(t), "alice", 1)
	p, err := bob.DeviceSafetyNumber(ctx(t), "alice", 2)
	if err != nil || a != p {
		t.Fatalf("bob's safety numbers with alice's devices: %q and %q, %v; want one", a, p, err)
	}

	// The server adds a device: a code it registers itself, a key of its own.
	code, err = alice.LinkCode(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	serverCode, _, err := linkKeys(code)
	if err != nil {
		t.Fatal(err)
	}
	fake := ts.openWith(t, t.TempDir(), "alice", &rf, func(c *Config) { c.Link, c.joinFresh = serverCode, true })
	if fake.Device() != 3 {
		t.Fatalf("the added device is %d", fake.Device())
	}
	if err := fake.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := bob.Send(ctx(t), "alice", "for alice's real devices"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(ctx(t), "bob", "from alice, not to the added device"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the phone to read both", func() bool { return len(rp.texts("bob")) == 2 && len(rp.texts("alice")) == 1 })
	if !rb.has(EventDeviceRejected, "alice", 3) || !ra.has(EventDeviceRejected, "alice", 3) {
		t.Fatalf("bob or alice did not report the added device: %+v / %+v", rb.events, ra.events)
	}
	if err := fake.Send(ctx(t), "bob", "I am alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob to hold the added device's message", func() bool { return rb.has(EventIdentityChanged, "alice", 3) })
	time.Sleep(100 * time.Millisecond)
	if n := len(rf.texts("bob")) + len(rf.texts("alice")); n != 0 {
		t.Fatalf("the added device read %d messages", n)
	}
	for _, text := range rb.texts("alice") {
		if text == "I am alice" {
			t.Fatal("bob shows the added device's message as alice's")
		}
	}
}
