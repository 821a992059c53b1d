package ratchet

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
)

const benchSize = 1024

func benchPair(b testing.TB, cfg *Config) (alice, bob *Session) {
	sk := make([]byte, 32)
	rand.Read(sk)
	ad := make([]byte, 66)
	rand.Read(ad)
	spk, err := keys.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	alice, err = NewInitiator(sk, ad, spk.PublicKey(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	bob, err = NewResponder(sk, ad, spk, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return alice, bob
}

func benchFloorPair() (alice, bob *floorParty) {
	sk := make([]byte, 32)
	rand.Read(sk)
	ad := make([]byte, 66)
	rand.Read(ad)
	return newFloorPair(sk, ad)
}

// BenchmarkSteady is one 1 KiB message, Encrypt and Decrypt, on a chain
// that is already established (no DH ratchet step).
func BenchmarkSteady(b *testing.B) {
	pt := make([]byte, benchSize)
	b.Run("impl=ratchet", func(b *testing.B) {
		alice, bob := benchPair(b, nil)
		msg := make([]byte, 0, benchSize+minMessageSize)
		out := make([]byte, 0, benchSize)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			msg, err = alice.AppendEncrypt(msg[:0], pt)
			if err != nil {
				b.Fatal(err)
			}
			if out, err = bob.AppendDecrypt(out[:0], msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=floor", func(b *testing.B) {
		alice, bob := benchFloorPair()
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bob.decrypt(alice.encrypt(pt)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same message as a session layer over a memory store runs it:
	// each side loads its state, encrypts or decrypts, and saves the state
	// again, with a new Session per load (ParseSession) or one reused
	// Session (UnmarshalBinary).
	for _, reuse := range []bool{false, true} {
		name := "impl=ratchet+ParseSession"
		if reuse {
			name = "impl=ratchet+UnmarshalBinary"
		}
		b.Run(name, func(b *testing.B) {
			alice, bob := benchPair(b, nil)
			as, bs := state(b, alice), state(b, bob)
			load := func(s *Session, blob []byte) *Session {
				if reuse {
					if err := s.UnmarshalBinary(blob); err != nil {
						b.Fatal(err)
					}
					return s
				}
				s, err := ParseSession(blob)
				if err != nil {
					b.Fatal(err)
				}
				sink = s
				return s
			}
			msg := make([]byte, 0, benchSize+minMessageSize)
			out := make([]byte, 0, benchSize)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				a := load(alice, as)
				if msg, err = a.AppendEncrypt(msg[:0], pt); err != nil {
					b.Fatal(err)
				}
				as, _ = a.AppendBinary(as[:0])
				r := load(bob, bs)
				if out, err = r.AppendDecrypt(out[:0], msg); err != nil {
					b.Fatal(err)
				}
				bs, _ = r.AppendBinary(bs[:0])
			}
		})
	}
}

// BenchmarkPingPong is one 1 KiB message per iteration, the parties taking
// turns, so every Decrypt is a DH ratchet step.
func BenchmarkPingPong(b *testing.B) {
	pt := make([]byte, benchSize)
	b.Run("impl=ratchet", func(b *testing.B) {
		alice, bob := benchPair(b, nil)
		msg := make([]byte, 0, benchSize+minMessageSize)
		out := make([]byte, 0, benchSize)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		from, to := alice, bob
		for b.Loop() {
			var err error
			msg, err = from.AppendEncrypt(msg[:0], pt)
			if err != nil {
				b.Fatal(err)
			}
			if out, err = to.AppendDecrypt(out[:0], msg); err != nil {
				b.Fatal(err)
			}
			from, to = to, from
		}
	})
	b.Run("impl=floor", func(b *testing.B) {
		alice, bob := benchFloorPair()
		b.SetBytes(benchSize)
		b.ReportAllocs()
		from, to := alice, bob
		for b.Loop() {
			if _, err := to.decrypt(from.encrypt(pt)); err != nil {
				b.Fatal(err)
			}
			from, to = to, from
		}
	})
}

// BenchmarkSkipped decrypts 1 KiB messages whose keys were stored when a
// later message of their chain arrived first (batches of 1000, delivered
// last first; the setup is not timed).
func BenchmarkSkipped(b *testing.B) {
	const batch = 1000
	pt := make([]byte, benchSize)
	b.Run("impl=ratchet", func(b *testing.B) {
		alice, bob := benchPair(b, nil)
		var msgs [][]byte
		out := make([]byte, 0, benchSize)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if len(msgs) == 0 {
				b.StopTimer()
				msgs = make([][]byte, batch)
				for i := range msgs {
					msgs[i], _ = alice.Encrypt(pt)
				}
				if _, err := bob.Decrypt(msgs[batch-1]); err != nil {
					b.Fatal(err)
				}
				msgs = msgs[:batch-1]
				b.StartTimer()
			}
			var err error
			if out, err = bob.AppendDecrypt(out[:0], msgs[len(msgs)-1]); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:len(msgs)-1]
		}
	})
	b.Run("impl=floor", func(b *testing.B) {
		alice, bob := benchFloorPair()
		var msgs [][]byte
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if len(msgs) == 0 {
				b.StopTimer()
				msgs = make([][]byte, batch)
				for i := range msgs {
					msgs[i] = alice.encrypt(pt)
				}
				if _, err := bob.decrypt(msgs[batch-1]); err != nil {
					b.Fatal(err)
				}
				msgs = msgs[:batch-1]
				b.StartTimer()
			}
			if _, err := bob.decrypt(msgs[len(msgs)-1]); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:len(msgs)-1]
		}
	})
}

// floorState is what a straightforward implementation would serialize,
// with encoding/json, the floor of BenchmarkState.
type floorState struct {
	Suite, MaxSkip, MaxSkippedKeys int
	AD, RK, DHsPriv, DHsPub, DHr   []byte
	CKs, CKr                       []byte
	Ns, Nr, PN                     uint32
	Skipped                        []floorSkipped
}

type floorSkipped struct {
	RatchetKey []byte
	N          uint32
	MK         []byte
}

// BenchmarkState is one MarshalBinary and one ParseSession of an
// established session, without skipped keys and with 50 of them.
func BenchmarkState(b *testing.B) {
	for _, skipped := range []int{0, 50} {
		alice, bob := benchPair(b, nil)
		var last []byte
		for range skipped + 1 {
			last, _ = alice.Encrypt(nil)
		}
		if _, err := bob.Decrypt(last); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("skipped=%d/impl=ratchet", skipped), func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = bob.AppendBinary(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				s, err := ParseSession(buf)
				if err != nil {
					b.Fatal(err)
				}
				sink = s
			}
			b.ReportMetric(float64(len(buf)), "bytes")
		})
		b.Run(fmt.Sprintf("skipped=%d/impl=ratchet-reuse", skipped), func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			s := new(Session)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = bob.AppendBinary(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				if err := s.UnmarshalBinary(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("skipped=%d/impl=floor", skipped), func(b *testing.B) {
			fs := floorState{Suite: 1, MaxSkip: 1000, MaxSkippedKeys: 2000, AD: bob.ad(), RK: bob.rk[:], DHsPriv: bob.dhsPriv[:],
				DHsPub: bob.dhsPub[:], DHr: bob.dhr[:], CKs: bob.cks[:], CKr: bob.ckr[:], Ns: bob.ns, Nr: bob.nr, PN: bob.pn}
			bob.skipped.each(func(pub *[32]byte, e *skippedKey) {
				fs.Skipped = append(fs.Skipped, floorSkipped{pub[:], e.n, e.mk[:]})
			})
			var n int
			b.ReportAllocs()
			for b.Loop() {
				j, err := json.Marshal(&fs)
				if err != nil {
					b.Fatal(err)
				}
				var back floorState
				if err := json.Unmarshal(j, &back); err != nil {
					b.Fatal(err)
				}
				n = len(j)
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

// BenchmarkReject is Decrypt of hostile headers that are refused before
// any key is derived (a counter of 2^32-1, a gap beyond MaxSkip), and the
// costliest forgery on the current chain.
func BenchmarkReject(b *testing.B) {
	alice, bob := benchPair(b, nil)
	m, _ := alice.Encrypt(make([]byte, benchSize))
	if _, err := bob.Decrypt(m); err != nil {
		b.Fatal(err)
	}
	m, _ = alice.Encrypt(make([]byte, benchSize))
	for _, c := range []struct {
		name string
		off  int
		v    uint32
		want error
	}{
		{"N=2^32-1", 38, 1<<32 - 1, ErrCounterOverflow},
		{"PN=2^32-1", 34, 1<<32 - 1, ErrCounterOverflow},
		{"gap", 38, 1 << 20, ErrTooManySkipped},
		// Not rejected early: a forgery at the largest allowed gap costs
		// MaxSkip chain steps before its tag fails.
		{"forged-gap-1000", 38, 1 + DefaultMaxSkip, ErrAuthentication},
	} {
		h := bytes.Clone(m)
		binary.BigEndian.PutUint32(h[c.off:], c.v)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bob.Decrypt(h); err != c.want {
					b.Fatal(err)
				}
			}
		})
	}
}
