package session_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/senderkey"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// exampleServer is the part of a key server the fan-out examples need:
// the devices registered under each name, and their uploads, which it
// hands out as bundles (without one-time prekeys, to keep it short).
type exampleServer struct {
	devices map[store.Address]*session.Manager
	uploads map[store.Address]*session.PreKeyUpload
}

// register makes a Signal device with its own store and publishes its
// prekeys.
func (s *exampleServer) register(name string, id uint32) *session.Manager {
	ctx := context.Background()
	m, err := session.New(memory.New(), &session.Config{Protocol: ratchet.Signal, RegistrationID: id, OneTimePreKeys: 2, MinOneTimePreKeys: 1})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Init(ctx, id); err != nil {
		log.Fatal(err)
	}
	up, err := m.Upkeep(ctx)
	if err != nil {
		log.Fatal(err)
	}
	a := store.Address{Name: name, DeviceID: id}
	s.devices[a], s.uploads[a] = m, up
	return m
}

// list is the server's device list of name, in increasing order.
func (s *exampleServer) list(name string) session.DeviceList {
	l := session.DeviceList{Name: name}
	for id := uint32(1); id < 10; id++ {
		if s.devices[store.Address{Name: name, DeviceID: id}] != nil {
			l.Devices = append(l.Devices, id)
		}
	}
	return l
}

// fetch is the session.BundleFetcher.
func (s *exampleServer) fetch(_ context.Context, a store.Address) (session.Bundle, error) {
	up := s.uploads[a]
	if up == nil {
		return session.Bundle{}, errors.New("no such device")
	}
	return session.Bundle{PQXDH: up.SignalBundle(nil, nil)}, nil
}

// deliver hands each message of rep to its device and returns the
// plaintexts by address.
func (s *exampleServer) deliver(from store.Address, rep *session.FanoutReport) map[store.Address][]byte {
	out := map[store.Address][]byte{}
	for _, msg := range rep.Sent {
		pt, err := s.devices[msg.Address].Decrypt(context.Background(), from, msg.Message)
		if err != nil {
			log.Fatal(err)
		}
		out[msg.Address] = pt
	}
	return out
}

// Alice writes to Bob, who has two devices, from her phone; her laptop
// gets a copy. Sessions with devices new to her phone start from bundles
// the server hands out. Then Bob's second device is unregistered: the
// next fan-out reports it as stale.
func ExampleManager_EncryptToDevices() {
	ctx := context.Background()
	srv := &exampleServer{devices: map[store.Address]*session.Manager{}, uploads: map[store.Address]*session.PreKeyUpload{}}
	phone := srv.register("alice", 1)
	srv.register("alice", 2) // the laptop
	srv.register("bob", 1)
	srv.register("bob", 2)

	to := []session.DeviceList{srv.list("bob"), srv.list("alice")}
	rep, err := phone.EncryptToDevices(ctx, store.Address{Name: "alice", DeviceID: 1}, to, []byte("lunch?"), srv.fetch)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range rep.Sent {
		fmt.Printf("to %v: type %d, new session %v\n", m.Address, m.Type, m.Started)
	}
	got := srv.deliver(store.Address{Name: "alice", DeviceID: 1}, rep)
	fmt.Printf("bob's second device reads %q\n", got[store.Address{Name: "bob", DeviceID: 2}])

	delete(srv.devices, store.Address{Name: "bob", DeviceID: 2})
	rep, err = phone.EncryptToDevices(ctx, store.Address{Name: "alice", DeviceID: 1}, []session.DeviceList{srv.list("bob")}, []byte("at noon"), srv.fetch)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent:", len(rep.Sent), "failed:", len(rep.Failed), "stale:", rep.Stale)
	// Output:
	// to "bob".1: type 3, new session true
	// to "bob".2: type 3, new session true
	// to "alice".2: type 3, new session true
	// bob's second device reads "lunch?"
	// sent: 1 failed: 0 stale: ["bob".2]
}

// A group of three with Sender Keys: each member makes a sending chain
// for the group and hands its distribution message to the others over
// the pairwise sessions (a fan-out); a group message is then encrypted
// once and read by everyone. Carol is removed: Alice and Bob drop their
// chains and distribute new ones to each other only, so Carol cannot
// read what follows. The group id and the membership are the
// application's; only session and group messages pass between devices.
func Example_groups() {
	ctx := context.Background()
	srv := &exampleServer{devices: map[store.Address]*session.Manager{}, uploads: map[store.Address]*session.PreKeyUpload{}}
	names := []string{"alice", "bob", "carol"}
	for _, n := range names {
		srv.register(n, 1)
	}
	addr := func(n string) store.Address { return store.Address{Name: n, DeviceID: 1} }
	group := senderkey.NewDistributionID()

	// What each member keeps: its own sending record, and one record per
	// other member (in a store.SenderKeys in a real application).
	own := map[string]*senderkey.Record{}
	received := map[string]map[string]*senderkey.Record{}
	distribute := func(sender string, members []string) {
		own[sender] = new(senderkey.Record)
		dm, err := own[sender].DistributionMessage(group)
		if err != nil {
			log.Fatal(err)
		}
		var to []session.DeviceList
		for _, n := range members {
			if n != sender {
				to = append(to, srv.list(n))
			}
		}
		rep, err := srv.devices[addr(sender)].EncryptToDevices(ctx, addr(sender), to, dm.Bytes(), srv.fetch)
		if err != nil || len(rep.Failed) > 0 {
			log.Fatal(err, rep.Failed)
		}
		for a, pt := range srv.deliver(addr(sender), rep) {
			m, err := senderkey.ParseDistributionMessage(pt)
			if err != nil {
				log.Fatal(err)
			}
			r := new(senderkey.Record)
			r.Process(m)
			received[a.Name][sender] = r
		}
	}
	for _, n := range names {
		received[n] = map[string]*senderkey.Record{}
	}
	for _, n := range names {
		distribute(n, names)
	}

	msg, err := own["alice"].Encrypt(group, []byte("welcome, both"))
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range []string{"bob", "carol"} {
		pt, err := received[n]["alice"].Decrypt(msg)
		fmt.Printf("%s reads %q %v\n", n, pt, err)
	}

	// Carol leaves: the others rotate.
	for _, n := range []string{"alice", "bob"} {
		own[n].Clear()
		distribute(n, []string{"alice", "bob"})
	}
	msg, err = own["bob"].Encrypt(group, []byte("carol has left"))
	if err != nil {
		log.Fatal(err)
	}
	pt, err := received["alice"]["bob"].Decrypt(msg)
	fmt.Printf("alice reads %q %v\n", pt, err)
	_, err = received["carol"]["bob"].Decrypt(msg)
	fmt.Println("carol cannot:", errors.Is(err, senderkey.ErrNoState))
	// Output:
	// bob reads "welcome, both" <nil>
	// carol reads "welcome, both" <nil>
	// alice reads "carol has left" <nil>
	// carol cannot: true
}
