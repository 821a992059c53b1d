package session_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
	"github.com/ratchetkit/ratchetkit/internal/testutil/signalfloor"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// The Signal benchmarks: the session layer on the memory store
// (Config.Protocol ratchet.Signal) beside its floor in the same run,
// internal/testutil/signalfloor, which does the same primitive work with
// standard-library calls only (its package documentation lists what it
// includes and leaves out; its tests hold sessions with ratchetkit, so it
// cannot skip a step). Steady and ping-pong also run the bare ratchet
// core (impl=ratchet), so that the session layer's own cost (the record,
// the identity check, the store transaction) shows apart from the
// ratchet's. The three cases:
//
//   - setup: Alice decodes Bob's bundle from its bytes, StartSignalSession
//     (both XEdDSA signatures, PQXDH with a one-time EC and a one-time
//     Kyber prekey), encrypts 1 KiB, and Bob decrypts the
//     PreKeySignalMessage (his prekeys loaded, PQXDH, a new record, the
//     one-time prekey removed and the Kyber prekey marked used);
//   - steady: one 1 KiB message on an established chain, no DH step;
//   - ping-pong: the parties take turns, so that every message is a DH
//     ratchet step.
//
// BenchmarkSignalRatio times session and floor on the thread's CPU
// clock, one call of each per iteration, and reports x-floor: the ratio
// that holds on a shared machine. Run it interleaved:
//
//	go test -c -o s.test ./session && for i in $(seq 8); do
//		./s.test -test.run '^$' -test.bench 'Signal' >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl bench.txt

// signalRatchetParties runs PQXDH and starts both ratchet sessions.
func signalRatchetParties(b *testing.B) (alice, bob *ratchet.Session) {
	aik, _ := keys.GenerateIdentityKeyPair()
	bik, _ := keys.GenerateIdentityKeyPair()
	spk, err := keys.GenerateSignedPreKey(bik, 1)
	if err != nil {
		b.Fatal(err)
	}
	kpk, err := kyber.GeneratePreKey(bik, 2, true)
	if err != nil {
		b.Fatal(err)
	}
	bundle := &pqxdh.Bundle{IdentityKey: bik.PublicKey(), SignedPreKeyID: 1, SignedPreKey: spk.PublicKey(),
		SignedPreKeySignature: spk.Signature(), KyberPreKeyID: 2, KyberPreKey: kpk.PublicKey(), KyberPreKeySignature: kpk.Signature()}
	in, err := pqxdh.Initiate(aik, bundle)
	if err != nil {
		b.Fatal(err)
	}
	k, err := pqxdh.Respond(bik, spk, nil, kpk, &in.Header)
	if err != nil {
		b.Fatal(err)
	}
	if alice, err = ratchet.NewSignalInitiator(&in.Keys, aik.PublicKey(), bik.PublicKey(), spk.PublicKey(), nil); err != nil {
		b.Fatal(err)
	}
	if bob, err = ratchet.NewSignalResponder(k, bik.PublicKey(), aik.PublicKey(), spk.PrivateKey(), nil); err != nil {
		b.Fatal(err)
	}
	return alice, bob
}

// signalSessionParties makes two Signal Managers on memory stores with a
// session that has been answered.
func signalSessionParties(b testing.TB) (alice, bob *signalDevice) {
	alice = newSignalDevice(b, memory.New(), "alice", 1, nil)
	bob = newSignalDevice(b, memory.New(), "bob", 2, nil)
	alice.start(bob, -1, -1)
	bob.decrypt(alice.device, alice.encrypt(bob.device, "hi"), "hi")
	alice.decrypt(bob.device, bob.encrypt(alice.device, "ok"), "ok")
	return alice, bob
}

// signalMessages returns one 1 KiB message of the chosen implementation,
// encrypted by one party and decrypted by the other; with turns the
// parties swap after each message.
func signalMessages(b *testing.B, impl string, turns bool) func() {
	pt := make([]byte, benchSize)
	msg := make([]byte, 0, benchSize+200)
	out := make([]byte, 0, benchSize+16)
	switch impl {
	case "session":
		alice, bob := signalSessionParties(b)
		ctx := context.Background()
		from, to := alice, bob
		return func() {
			var err error
			if msg, err = from.m.AppendEncrypt(ctx, msg[:0], to.addr, pt); err != nil {
				b.Fatal(err)
			}
			if out, err = to.m.AppendDecrypt(ctx, out[:0], from.addr, msg); err != nil {
				b.Fatal(err)
			}
			if turns {
				from, to = to, from
			}
		}
	case "ratchet":
		alice, bob := signalRatchetParties(b)
		if _, err := bob.Decrypt(must(alice.Encrypt(pt))); err != nil {
			b.Fatal(err)
		}
		if _, err := alice.Decrypt(must(bob.Encrypt(pt))); err != nil {
			b.Fatal(err)
		}
		from, to := alice, bob
		return func() {
			var err error
			if msg, err = from.AppendEncrypt(msg[:0], pt); err != nil {
				b.Fatal(err)
			}
			if out, err = to.AppendDecrypt(out[:0], msg); err != nil {
				b.Fatal(err)
			}
			if turns {
				from, to = to, from
			}
		}
	}
	pre, bundle := signalfloor.NewPreKeys()
	aik, _ := ecdh.X25519().GenerateKey(rand.Reader)
	alice, m, err := signalfloor.Initiate(aik, 1, bundle, pt)
	if err != nil {
		b.Fatal(err)
	}
	bob, _, err := pre.Respond(m)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := alice.Decrypt(bob.Encrypt(pt)); err != nil {
		b.Fatal(err)
	}
	from, to := alice, bob
	return func() {
		if _, err := to.Decrypt(from.Encrypt(pt)); err != nil {
			b.Fatal(err)
		}
		if turns {
			from, to = to, from
		}
	}
}

// BenchmarkSignalSteady: one 1 KiB message on an established chain (no
// DH step), encrypted by Alice and decrypted by Bob.
func BenchmarkSignalSteady(b *testing.B) { benchSignalMessages(b, false) }

// BenchmarkSignalPingPong: one 1 KiB message per iteration, the parties
// taking turns, each message a DH ratchet step.
func BenchmarkSignalPingPong(b *testing.B) { benchSignalMessages(b, true) }

func benchSignalMessages(b *testing.B, turns bool) {
	for _, impl := range []string{"session", "ratchet", "floor"} {
		b.Run("impl="+impl, func(b *testing.B) {
			step := signalMessages(b, impl, turns)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				step()
			}
		})
	}
}

// signalSetup is one setup of either implementation: prepare (untimed)
// makes the parties and hands out the bundle, run (timed) is the setup.
type signalSetup struct {
	prepare, run func()
}

// sessionSetup: Bob is a Signal Manager whose upload the setups use up,
// one one-time EC and one one-time Kyber prekey each (Upkeep refills
// them between runs); each setup has a new Alice, so that neither record
// grows.
func sessionSetup(b *testing.B) signalSetup {
	ctx := context.Background()
	pt := make([]byte, benchSize)
	cfg := func(id uint32) *session.Config {
		return &session.Config{Protocol: ratchet.Signal, RegistrationID: id, OneTimePreKeys: 64, MinOneTimePreKeys: 64}
	}
	bob := newDevice(b, memory.New(), "bob", 1, cfg(1))
	var up *session.PreKeyUpload
	var opks []session.PublicPreKey
	var kpks []session.PublicKyberPreKey
	type wire struct{ ik, spk, opk, kpk []byte }
	var w wire
	var alice *device
	var ids struct{ spk, opk, kpk uint32 }
	var sigs struct{ spk, kpk []byte }
	i := uint32(1)
	return signalSetup{
		prepare: func() {
			if len(opks) == 0 || len(kpks) == 0 {
				var err error
				if up, err = bob.m.Upkeep(ctx); err != nil {
					b.Fatal(err)
				}
				opks, kpks = up.OneTimePreKeys, up.KyberOneTimePreKeys
			}
			w = wire{up.IdentityKey.Encode(), up.SignedPreKey.Encode(), opks[0].Key.Encode(), kpks[0].Key.Encode()}
			ids.spk, ids.opk, ids.kpk = up.SignedPreKeyID, opks[0].ID, kpks[0].ID
			sigs.spk, sigs.kpk = up.SignedPreKeySignature, kpks[0].Signature
			opks, kpks = opks[1:], kpks[1:]
			i++
			alice = newDevice(b, memory.New(), fmt.Sprint("alice", i), 1, cfg(i))
		},
		run: func() {
			ik, err1 := keys.DecodePublicKey(w.ik)
			spk, err2 := keys.DecodePublicKey(w.spk)
			opk, err3 := keys.DecodePublicKey(w.opk)
			kpk, err4 := kyber.ParsePublicKey(w.kpk)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
				b.Fatal("bundle")
			}
			bundle := &pqxdh.Bundle{DeviceID: 1, IdentityKey: ik, SignedPreKeyID: ids.spk, SignedPreKey: spk, SignedPreKeySignature: sigs.spk,
				OneTimePreKeyID: ids.opk, OneTimePreKey: opk, KyberPreKeyID: ids.kpk, KyberPreKey: kpk, KyberPreKeySignature: sigs.kpk}
			if err := alice.m.StartSignalSession(ctx, bob.addr, bundle); err != nil {
				b.Fatal(err)
			}
			m, err := alice.m.Encrypt(ctx, bob.addr, pt)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bob.m.Decrypt(ctx, alice.addr, m); err != nil {
				b.Fatal(err)
			}
		},
	}
}

// floorSetup: the same setup by the floor; its Bob keeps one set of
// prekeys, loaded from their bytes at every setup as the session layer
// loads them from the store.
func floorSetup(b *testing.B) signalSetup {
	pt := make([]byte, benchSize)
	pre, bundle := signalfloor.NewPreKeys()
	var aik *ecdh.PrivateKey
	return signalSetup{
		prepare: func() { aik, _ = ecdh.X25519().GenerateKey(rand.Reader) },
		run: func() {
			_, m, err := signalfloor.Initiate(aik, 1, bundle, pt)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := pre.Respond(m); err != nil {
				b.Fatal(err)
			}
		},
	}
}

// BenchmarkSignalSetup: setup on both sides plus the first message.
func BenchmarkSignalSetup(b *testing.B) {
	for _, impl := range []struct {
		name string
		make func(*testing.B) signalSetup
	}{{"session", sessionSetup}, {"floor", floorSetup}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			s := impl.make(b)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s.prepare()
				b.StartTimer()
				s.run()
			}
		})
	}
}

// BenchmarkSignalRatio: the floor and the session layer interleaved, one
// of each per iteration, timed on the thread's CPU clock (x-floor is the
// ratio). The CPU clock leaves out garbage collection on other threads,
// which the wall-clock benchmarks above include.
func BenchmarkSignalRatio(b *testing.B) {
	b.Run("msg=setup", func(b *testing.B) {
		floor, sess := floorSetup(b), sessionSetup(b)
		prepare := func() { floor.prepare(); sess.prepare() }
		testutil.InterleavePrepared(b, prepare, floor.run, sess.run)
	})
	for _, mode := range []string{"steady", "ping-pong"} {
		b.Run("msg="+mode, func(b *testing.B) {
			turns := mode == "ping-pong"
			testutil.Interleave(b, signalMessages(b, "floor", turns), signalMessages(b, "session", turns))
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
