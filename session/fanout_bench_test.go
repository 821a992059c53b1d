package session_test

import (
	"context"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
)

// fanoutDevices is the fan-out benchmarks' device count.
const fanoutDevices = 10

// BenchmarkFanout is one 1 KiB message to 10 devices with established,
// answered sessions (steady messages, no DH step, no bundle fetched),
// through EncryptToDevices on the memory store, beside its floor: 10
// steady encryptions of the bare ratchet core in the same protocol, the
// sending half of the floor of BenchmarkSteady and BenchmarkSignalSteady
// (impl=ratchet). impl=ratio interleaves the two, one of each per
// iteration, on the thread's CPU clock, and reports x-floor: on a shared
// machine the ratio holds where wall-clock figures swing.
//
// What the fan-out adds to the floor is, per device, the session layer's
// Encrypt (the address's lock, its cached record, the identity check, the
// compare-and-swap write) and one store read for each list (the stored
// devices, for the stale ones) plus one for the local identity.
func BenchmarkFanout(b *testing.B) {
	pt := make([]byte, benchSize)
	for _, p := range []ratchet.Protocol{ratchet.ProfileV1, ratchet.Signal} {
		name := "proto=v1"
		if p == ratchet.Signal {
			name = "proto=Signal"
		}
		floor := func(b *testing.B) func() {
			var sessions []*ratchet.Session
			for range fanoutDevices {
				sessions = append(sessions, benchEstablished(b, p))
			}
			msg := make([]byte, 0, benchSize+200)
			return func() {
				for _, s := range sessions {
					var err error
					if msg, err = s.AppendEncrypt(msg[:0], pt); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		fanout := func(b *testing.B) func() {
			sender, lists, fetch := benchFanoutSetup(b, p)
			ctx := context.Background()
			return func() {
				rep, err := sender.m.EncryptToDevices(ctx, sender.addr, lists, pt, fetch)
				if err != nil || len(rep.Sent) != fanoutDevices {
					b.Fatal(err, rep.Failed)
				}
			}
		}
		b.Run(name+"/impl=floor", func(b *testing.B) {
			f := floor(b)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		})
		b.Run(name+"/impl=fanout", func(b *testing.B) {
			f := fanout(b)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		})
		b.Run(name+"/impl=ratio", func(b *testing.B) {
			testutil.Interleave(b, floor(b), fanout(b))
		})
	}
}

// benchEstablished returns the sending side of a bare ratchet session
// that has sent and received, so that its next messages are steady.
func benchEstablished(b *testing.B, p ratchet.Protocol) *ratchet.Session {
	var a, z *ratchet.Session
	if p == ratchet.Signal {
		a, z = signalRatchetParties(b)
		m, _ := a.Encrypt([]byte("hi"))
		if _, err := z.Decrypt(m); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Decrypt(must(z.Encrypt([]byte("ok")))); err != nil {
			b.Fatal(err)
		}
	} else {
		a, _ = ratchetPair(b)
	}
	return a
}

// benchFanoutSetup makes a sender with answered sessions with the 10
// devices: 7 of Bob's and 3 of the sender's own other devices.
func benchFanoutSetup(b *testing.B, p ratchet.Protocol) (*foDevice, []session.DeviceList, session.BundleFetcher) {
	n := newFoNet(b, p)
	sender := n.add("alice", 1, nil)
	for id := uint32(1); id <= 7; id++ {
		n.add("bob", id, nil)
	}
	for id := uint32(2); id <= 4; id++ {
		n.add("alice", id, nil)
	}
	lists := []session.DeviceList{n.list("bob"), n.list("alice")}
	rep := n.fanout(sender, "hello", "bob", "alice")
	if len(rep.Sent) != fanoutDevices {
		b.Fatalf("sent %d", len(rep.Sent))
	}
	n.deliver(sender, rep, "hello")
	ctx := context.Background()
	for _, s := range rep.Sent {
		d := n.devs[s.Address]
		r, err := d.m.Encrypt(ctx, sender.addr, []byte("ok"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sender.m.Decrypt(ctx, d.addr, r); err != nil {
			b.Fatal(err)
		}
	}
	fetch := func(context.Context, store.Address) (session.Bundle, error) {
		b.Fatal("a bundle fetched in the steady state")
		return session.Bundle{}, nil
	}
	return sender, lists, fetch
}
