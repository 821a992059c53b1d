package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// newSignalPair starts two Signal sessions from random PQXDH keys, as the
// session layer would after PQXDH.
func newSignalPair(t testing.TB) (alice, bob *Session) { return newSignalPairWith(t, false) }

// signalEstablished is a pair after one message each way, Bob's on a new
// chain, so that Alice's next messages are on a chain Bob knows.
func signalEstablished(t testing.TB) (alice, bob *Session) {
	alice, bob = newSignalPair(t)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "hello"), "hello")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "hi"), "hi")
	mustDecrypt(t, bob, mustEncrypt(t, alice, "on the second chain"), "on the second chain")
	return alice, bob
}

func TestSignalConversation(t *testing.T) {
	alice, bob := newSignalPair(t)
	if alice.Protocol() != Signal || bob.Protocol() != Signal {
		t.Fatal("Protocol")
	}
	if _, err := bob.Encrypt([]byte("x")); !errors.Is(err, ErrNoSendingChain) {
		t.Fatalf("responder encrypts first: %v", err)
	}
	for round := range 4 {
		for i := range round + 1 {
			mustDecrypt(t, bob, mustEncrypt(t, alice, fmt.Sprint("a", round, i)), fmt.Sprint("a", round, i))
		}
		if !bob.HasReceived() {
			t.Fatal("HasReceived")
		}
		for i := range 2 {
			mustDecrypt(t, alice, mustEncrypt(t, bob, fmt.Sprint("b", round, i)), fmt.Sprint("b", round, i))
		}
	}
	// A profile v1 message is malformed to a Signal session.
	a1, _ := newPair(t, nil)
	decryptFails(t, bob, mustEncrypt(t, a1, "v1"), ErrMalformed)
}

// TestSignalTamper: every single-bit change of a message is refused with
// the state unchanged, and the original then decrypts once.
func TestSignalTamper(t *testing.T) {
	alice, bob := signalEstablished(t)
	for _, newChain := range []bool{false, true} {
		if newChain {
			mustDecrypt(t, alice, mustEncrypt(t, bob, "turn"), "turn")
		}
		msg := mustEncrypt(t, alice, "tamper with me")
		for i := range msg {
			for bit := range 8 {
				bad := bytes.Clone(msg)
				bad[i] ^= 1 << bit
				before := state(t, bob)
				if _, err := bob.Decrypt(bad); err == nil {
					t.Fatalf("byte %d bit %d: tampered message decrypts", i, bit)
				}
				if !bytes.Equal(before, state(t, bob)) {
					t.Fatalf("byte %d bit %d: refused message changed the state", i, bit)
				}
			}
		}
		for _, cut := range [][]byte{nil, msg[:1], msg[:len(msg)-1], append(bytes.Clone(msg), 0)} {
			before := state(t, bob)
			if _, err := bob.Decrypt(cut); err == nil || !bytes.Equal(before, state(t, bob)) {
				t.Fatalf("cut message: %v, or the state changed", err)
			}
		}
		mustDecrypt(t, bob, msg, "tamper with me")
		decryptFails(t, bob, msg, ErrDuplicate)
	}
}

// held encrypts n messages and returns them.
func held(t testing.TB, s *Session, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = mustEncrypt(t, s, fmt.Sprint("m", i))
	}
	return out
}

// TestSignalJumpLimit: after 24 999 skipped messages (a jump of 25 000 in
// the message number and the SPQR index) a message decrypts; after 25 000
// it is refused, as libsignal does (internal/signalsuite's TestLiveLimits
// measured both). Of the skipped messages the newest 2 000 decrypt and the
// 2 001st newest is a duplicate.
func TestSignalJumpLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("50 000 messages")
	}
	for _, skipped := range []int{24999, 25000} {
		t.Run(fmt.Sprint(skipped), func(t *testing.T) {
			alice, bob := signalEstablished(t)
			ms := held(t, alice, skipped+1)
			last := ms[skipped]
			if skipped == 25000 {
				decryptFails(t, bob, last, ErrTooManySkipped)
				return
			}
			mustDecrypt(t, bob, last, fmt.Sprint("m", skipped))
			if n := bob.skipped.count(&bob.sig.chains[bob.sig.nchains-1].pub); n != SignalMaxKeysPerChain {
				t.Fatalf("%d seeds kept, want %d", n, SignalMaxKeysPerChain)
			}
			decryptFails(t, bob, ms[skipped-2001], ErrDuplicate)
			mustDecrypt(t, bob, ms[skipped-2000], fmt.Sprint("m", skipped-2000))
			mustDecrypt(t, bob, ms[skipped-1], fmt.Sprint("m", skipped-1))
		})
	}
}

// TestSignalDoubleRatchetJump: the Double Ratchet's own bound (a counter
// more than 25 000 past the chain) refuses a forged header before any key
// is derived, even with an SPQR index that is in range: the forgery gets
// ErrTooManySkipped, not ErrAuthentication.
func TestSignalDoubleRatchetJump(t *testing.T) {
	alice, bob := signalEstablished(t)
	msg := mustEncrypt(t, alice, "x")
	next := bob.sig.chains[bob.sig.nchains-1].next
	for _, c := range []struct {
		counter uint32
		want    error
	}{{next + SignalMaxJump, ErrAuthentication}, {next + SignalMaxJump + 1, ErrTooManySkipped}} {
		m, body, _, err := signalwire.ParseSignalMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		m.Counter = c.counter
		forged, _ := m.AppendBody(nil)
		forged = append(forged, msg[len(body):]...)
		decryptFails(t, bob, forged, c.want)
	}
}

// TestSignalSeedsPerChain: a chain keeps its newest 2 000 seeds however
// they accumulate (here over two gaps), and a new chain leaves them alone.
// (SPQR's window of 2 000 indexes refuses the same messages, so only the
// store itself shows this limit.)
func TestSignalSeedsPerChain(t *testing.T) {
	alice, bob := signalEstablished(t)
	pub := bob.sig.chains[bob.sig.nchains-1].pub
	first := bob.sig.chains[bob.sig.nchains-1].next
	// stored checks that the chain holds exactly the seeds from..until-1
	// but the used one.
	stored := func(from, until, used uint32) {
		t.Helper()
		want := 0
		for n := from - 1; n <= until; n++ {
			in := n >= from && n < until && n != used
			if in {
				want++
			}
			if i, _ := bob.skipped.find(&pub, n); (i >= 0) != in {
				t.Fatalf("seed %d stored: %t", n, i >= 0)
			}
		}
		if n := bob.skipped.count(&pub); n != want {
			t.Fatalf("%d seeds stored, want %d", n, want)
		}
	}
	gap := held(t, alice, 1500)
	mustDecrypt(t, bob, gap[1499], "m1499")
	stored(first, first+1499, 0)
	gap = held(t, alice, 1000) // 999 more: the oldest 498 go
	mustDecrypt(t, bob, gap[999], "m999")
	stored(first+498, first+2499, first+1499)
	mustDecrypt(t, alice, mustEncrypt(t, bob, "turn"), "turn")
	third := held(t, alice, 30)
	mustDecrypt(t, bob, third[29], "m29")
	stored(first+498, first+2499, first+1499)
	mustDecrypt(t, bob, gap[998], "m998")
	mustDecrypt(t, bob, third[3], "m3")
	// One jump beyond the limit stores only the newest 2 000.
	alice, bob = signalEstablished(t)
	pub, first = bob.sig.chains[bob.sig.nchains-1].pub, bob.sig.chains[bob.sig.nchains-1].next
	gap = held(t, alice, 2500)
	mustDecrypt(t, bob, gap[2499], "m2499")
	stored(first+499, first+2499, 0)
}

// TestSignalReceivingChains: a session keeps its 5 newest receiving
// chains; a message held back on the 6th newest is refused (with the
// state unchanged), those on the 5 newest decrypt, as libsignal's live
// test measured.
func TestSignalReceivingChains(t *testing.T) {
	alice, bob := signalEstablished(t)
	var late [][]byte
	for chain := range 6 {
		late = append(late, mustEncrypt(t, alice, fmt.Sprint("late ", chain)))
		mustDecrypt(t, bob, mustEncrypt(t, alice, "now"), "now")
		mustDecrypt(t, alice, mustEncrypt(t, bob, "turn"), "turn")
	}
	mustDecrypt(t, bob, mustEncrypt(t, alice, "newest chain"), "newest chain")
	if bob.sig.nchains != SignalMaxReceivingChains {
		t.Fatalf("%d chains", bob.sig.nchains)
	}
	// late[i] is on Alice's chain i+2 (chain 1 carried "hello"); Bob has
	// chains 4 to 8.
	for i := len(late) - 1; i >= 0; i-- {
		if i >= 2 {
			mustDecrypt(t, bob, late[i], fmt.Sprint("late ", i))
		} else {
			decryptFails(t, bob, late[i], ErrAuthentication)
		}
	}
}

// TestSignalSPQRWindow: SPQR keeps the keys of skipped indexes within
// 2 000 of the newest received one. A message whose Double Ratchet seed is
// still stored (on an older chain) but whose SPQR index is more than 2 000
// behind is a duplicate.
func TestSignalSPQRWindow(t *testing.T) {
	alice, bob := signalEstablished(t)
	old := mustEncrypt(t, alice, "old") // chain 2, at the position Bob expects next
	mustDecrypt(t, alice, mustEncrypt(t, bob, "turn"), "turn")
	ms := held(t, alice, 2002) // chain 3
	mustDecrypt(t, bob, ms[2001], "m2001")
	// old's SPQR index is 2 002 behind the newest. Chain 2 is still held
	// and old is at its next position, so the Double Ratchet part would
	// decrypt; SPQR has trimmed the key.
	decryptFails(t, bob, old, ErrDuplicate)
	mustDecrypt(t, bob, ms[1], "m1")
	decryptFails(t, bob, ms[0], ErrDuplicate)
}

// TestSignalPreviousCounter: previous_counter is max(n − 1, 0) for a
// previous sending chain of n messages, as libsignal writes it (the
// transcript replay checks the same against libsignal's own messages).
func TestSignalPreviousCounter(t *testing.T) {
	alice, bob := newSignalPair(t)
	pc := func(msg []byte) uint32 {
		m, _, _, err := signalwire.ParseSignalMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		return m.PreviousCounter
	}
	mustDecrypt(t, bob, mustEncrypt(t, alice, "first"), "first")
	// Bob's previous chain is the one on his signed prekey, never used.
	reply := mustEncrypt(t, bob, "reply")
	if got := pc(reply); got != 0 {
		t.Fatalf("responder's first previous_counter %d", got)
	}
	mustDecrypt(t, alice, reply, "reply")
	sent := 0 // messages on Alice's current chain
	for _, n := range []int{1, 2, 5} {
		for _, m := range held(t, alice, n) {
			if _, err := bob.Decrypt(m); err != nil {
				t.Fatal(err)
			}
		}
		sent += n
		mustDecrypt(t, alice, mustEncrypt(t, bob, "turn"), "turn")
		m := mustEncrypt(t, alice, "after")
		if got, want := pc(m), uint32(sent-1); got != want {
			t.Fatalf("previous_counter after a chain of %d: %d, want %d", sent, got, want)
		}
		mustDecrypt(t, bob, m, "after")
		sent = 1
	}
}

// The model of the randomized Signal conversations: messages carry their
// sender's chain number, counter and SPQR index; a receiver knows which
// chains it holds (the 5 newest), which counters of each it has used and
// where each chain stands, and which SPQR indexes it has used.
type sigModel struct {
	party  int
	chains []int // chain numbers held, oldest first
	seen   map[int]bool
	next   map[int]uint32
	used   map[[2]int]bool
	pqMax  uint32
	pqUsed map[uint32]bool
	k      int // this party's sending chains so far, minus one (-1: none)
	ns     uint32
	pqSent uint32
}

// chain is the number of the party's current sending chain: Alice's k-th
// is 2k+1, Bob's 2k+2, and 0 is Bob's chain on his signed prekey.
func (m *sigModel) chain() int { return 2*m.k + 1 + m.party }

func newSigModel(party int) *sigModel {
	m := &sigModel{party: party, seen: map[int]bool{}, next: map[int]uint32{}, used: map[[2]int]bool{}, pqUsed: map[uint32]bool{}}
	if party == 0 {
		m.chains, m.seen[0] = []int{0}, true
	} else {
		m.k = -1
	}
	return m
}

type sigMsg struct {
	chain int
	n, q  uint32
	pt    string
	wire  []byte
}

func (m *sigModel) predict(x *sigMsg) bool {
	if m.seen[x.chain] && !contains(m.chains, x.chain) {
		return false // dropped chain: a DH step with the wrong key
	}
	if contains(m.chains, x.chain) && x.n < m.next[x.chain] && m.used[[2]int{x.chain, int(x.n)}] {
		return false
	}
	if x.q <= m.pqMax && (m.pqUsed[x.q] || x.q+spqr.MaxOutOfOrder < m.pqMax) {
		return false
	}
	return true
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestSignalRandomConversations(t *testing.T) {
	steps := 3000
	if testing.Short() {
		steps = 500
	}
	dropped := 0
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dropped += signalConversation(t, mrand.New(mrand.NewPCG(seed, 12)), steps)["on a dropped chain"]
		})
	}
	if dropped == 0 {
		t.Fatal("no message arrived on a dropped chain")
	}
}

func signalConversation(t *testing.T, rng *mrand.Rand, steps int) map[string]int {
	a, b := newSignalPair(t)
	s := [2]*Session{a, b}
	// Chain numbers: Alice's are odd, Bob's even; Alice starts on chain 1,
	// Bob (whose first chain is on the signed prekey, chain 0) has none.
	models := [2]*sigModel{newSigModel(0), newSigModel(1)}
	var inflight, parked [2][]*sigMsg // to party i
	stats := map[string]int{}
	for step := 0; step < steps; step++ {
		from := rng.IntN(2)
		switch r := rng.IntN(100); {
		case r < 30: // send one or two
			if models[1].k < 0 {
				from = 0 // Bob cannot send before receiving
			}
			m := models[from]
			for range 1 + rng.IntN(2) {
				pt := fmt.Sprint("step ", step, " from ", from, " #", m.ns)
				wire := mustEncrypt(t, s[from], pt)
				m.pqSent++
				inflight[1-from] = append(inflight[1-from], &sigMsg{chain: m.chain(), n: m.ns, q: m.pqSent, pt: pt, wire: wire})
				m.ns++
			}
		case r < 90 && len(inflight[from]) > 0: // deliver to from, reordered up to 5 back
			to := from
			q := inflight[to]
			i := rng.IntN(min(len(q), 6))
			x := q[i]
			dup := rng.IntN(10) == 0
			if !dup {
				inflight[to] = append(q[:i], q[i+1:]...)
			}
			if p := parked[to]; len(p) > 0 && rng.IntN(8) == 0 {
				// A message held back for long, often past several chains.
				x, parked[to] = p[0], p[1:]
				stats["held long"]++
			}
			m := models[to]
			wire := x.wire
			tamper := rng.IntN(12) == 0
			if tamper {
				wire = bytes.Clone(wire)
				wire[rng.IntN(len(wire))] ^= byte(1 << rng.IntN(8))
			}
			before := state(t, s[to])
			want := !tamper && m.predict(x)
			if m.seen[x.chain] && !contains(m.chains, x.chain) {
				stats["on a dropped chain"]++
			}
			pt, err := s[to].Decrypt(wire)
			if (err == nil) != want {
				t.Fatalf("step %d: message (chain %d, n %d, q %d) to %d: err %v, model says ok=%t", step, x.chain, x.n, x.q, to, err, want)
			}
			if err != nil {
				if !bytes.Equal(before, state(t, s[to])) {
					t.Fatalf("step %d: refused message changed the state", step)
				}
				stats["refused"]++
				continue
			}
			if string(pt) != x.pt {
				t.Fatalf("step %d: wrong plaintext", step)
			}
			stats["delivered"]++
			if !contains(m.chains, x.chain) {
				m.chains = append(m.chains, x.chain)
				if len(m.chains) > 5 {
					m.chains = m.chains[1:]
				}
				m.seen[x.chain] = true
				// A new chain: a new sending chain answers it.
				m.k++
				m.ns = 0
				stats["dh steps"]++
			}
			m.used[[2]int{x.chain, int(x.n)}] = true
			m.next[x.chain] = max(m.next[x.chain], x.n+1)
			m.pqUsed[x.q] = true
			m.pqMax = max(m.pqMax, x.q)
		case r < 95: // lose one in flight, or hold it back for long
			if q := inflight[from]; len(q) > 0 {
				i := rng.IntN(len(q))
				if r < 93 {
					parked[from] = append(parked[from], q[i])
				}
				inflight[from] = append(q[:i], q[i+1:]...)
				stats["lost or held"]++
			}
		default: // round-trip the state
			b := state(t, s[from])
			p, err := ParseSession(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(state(t, p), b) {
				t.Fatal("state does not re-marshal")
			}
			s[from] = p
		}
	}
	t.Logf("%v, SPQR epochs %d and %d", stats, pqEpoch(s[0]), pqEpoch(s[1]))
	if stats["delivered"] < steps/4 || stats["refused"] == 0 || stats["dh steps"] < steps/50 || min(pqEpoch(s[0]), pqEpoch(s[1])) < 3 {
		t.Fatalf("a conversation that tests little: %v", stats)
	}
	return stats
}

func TestSignalConstructorErrors(t *testing.T) {
	var k pqxdh.Keys
	id, _ := keys.GenerateIdentityKeyPair()
	spk, _ := keys.GeneratePrivateKey()
	pub := id.PublicKey()
	for i, f := range []func() (*Session, error){
		func() (*Session, error) { return NewSignalInitiator(nil, pub, pub, spk.PublicKey(), nil) },
		func() (*Session, error) { return NewSignalInitiator(&k, nil, pub, spk.PublicKey(), nil) },
		func() (*Session, error) { return NewSignalInitiator(&k, pub, pub, nil, nil) },
		func() (*Session, error) {
			return NewSignalInitiator(&k, pub, pub, spk.PublicKey(), &Config{MaxSkip: 5})
		},
		func() (*Session, error) { return NewSignalResponder(&k, pub, nil, spk, nil) },
		func() (*Session, error) { return NewSignalResponder(&k, pub, pub, nil, nil) },
		func() (*Session, error) { return NewSignalResponder(&k, pub, pub, spk, &Config{MaxSkippedKeys: 5}) },
	} {
		if s, err := f(); err == nil || s != nil {
			t.Errorf("case %d: accepted", i)
		}
	}
	// A small-order signed prekey makes the initiator's first step fail.
	zero, _ := keys.NewPublicKey(make([]byte, 32))
	if _, err := NewSignalInitiator(&k, pub, pub, zero, nil); !errors.Is(err, keys.ErrSmallOrder) {
		t.Errorf("small-order signed prekey: %v", err)
	}
	s, _ := NewSignalInitiator(&k, pub, pub, spk.PublicKey(), nil)
	if got := fmt.Sprintf("%v %+v %#v %s", s, s, s, *s); bytes.Contains([]byte(got), []byte("rk")) || !bytes.Contains([]byte(got), []byte("REDACTED")) {
		t.Errorf("formatting: %s", got)
	}
	s.Clear()
	defer func() {
		if recover() == nil {
			t.Error("a cleared Signal session encrypts")
		}
	}()
	s.Encrypt(nil)
}

// TestSignalCounterLimits: a sending chain ends at 2^32−2 messages and a
// received counter of 2^32−1 is refused before any key is derived, as in
// profile v1; SPQR's sending index running out is the same error. Nothing
// changes on either refusal.
func TestSignalCounterLimits(t *testing.T) {
	alice, bob := signalEstablished(t)
	msg := mustEncrypt(t, alice, "x")
	m, body, _, err := signalwire.ParseSignalMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	m.Counter = 1<<32 - 1
	forged, _ := m.AppendBody(nil)
	decryptFails(t, bob, append(forged, msg[len(body):]...), ErrCounterOverflow)

	alice.ns = maxCounter
	before := state(t, alice)
	if _, err := alice.Encrypt([]byte("x")); !errors.Is(err, ErrCounterOverflow) {
		t.Fatalf("Encrypt at the end of a chain: %v", err)
	}
	if !bytes.Equal(before, state(t, alice)) {
		t.Fatal("a refused Encrypt changed the state")
	}
	// SPQR's sending index running out, with minimal SPQR, whose state
	// can be edited here (spqr's tests cover the same for full SPQR).
	alice, _ = newSignalPairMinimalSPQR(t)
	pq := alice.sig.pq.(*spqr.Minimal)
	b := pq.AppendBinary(nil)
	copy(b[64:68], []byte{0xff, 0xff, 0xff, 0xff}) // send_index = 2^32−1, after pqr_key and send_chain
	alice.sig.pq, err = spqr.ParseMinimal(b)
	if err != nil {
		t.Fatal(err)
	}
	before = state(t, alice)
	if _, err := alice.Encrypt([]byte("x")); !errors.Is(err, ErrCounterOverflow) {
		t.Fatalf("Encrypt with SPQR's index used up: %v", err)
	}
	if !bytes.Equal(before, state(t, alice)) {
		t.Fatal("a refused Encrypt changed the state")
	}
}

// TestSignalSPQRKinds: a new Signal pair runs full SPQR, whose braid
// leaves epoch 1 within 60 round trips and whose state is pq_kind 2; the
// test-only minimal pair sends None messages of epoch 1 only, and its
// state is pq_kind 1. Both re-marshal to themselves when parsed, and a
// loaded minimal state moves to full SPQR with its first message.
func TestSignalSPQRKinds(t *testing.T) {
	for _, c := range []struct {
		name string
		pair func(testing.TB) (*Session, *Session)
		kind byte
	}{{"full", newSignalPairFullSPQR, pqKindFull}, {"minimal", newSignalPairMinimalSPQR, pqKindMinimal}} {
		t.Run(c.name, func(t *testing.T) {
			alice, bob := c.pair(t)
			types := map[spqr.MessageType]int{}
			for i := range 60 {
				for _, p := range [][2]*Session{{alice, bob}, {bob, alice}} {
					msg := mustEncrypt(t, p[0], fmt.Sprint(i))
					m, _, _, _ := signalwire.ParseSignalMessage(msg)
					pq, err := spqr.Parse(m.PQRatchet)
					if err != nil {
						t.Fatal(err)
					}
					types[pq.Type]++
					mustDecrypt(t, p[1], msg, fmt.Sprint(i))
				}
			}
			for _, s := range []*Session{alice, bob} {
				b := state(t, s)
				if kind := b[len(b)-s.sig.pq.MarshaledSize()-4]; kind != c.kind {
					t.Fatalf("pq_kind %d", kind)
				}
				p, err := ParseSession(b)
				if err != nil || !bytes.Equal(state(t, p), b) {
					t.Fatalf("state does not round-trip: %v", err)
				}
				// A parsed minimal state moves to full SPQR with its first
				// message; then its state is pq_kind 2.
				mustEncrypt(t, p, "after loading")
				if pqKind(p.sig.pq) != pqKindFull {
					t.Fatal("a loaded state did not move to full SPQR")
				}
			}
			full := c.kind == pqKindFull
			if e := min(pqEpoch(alice), pqEpoch(bob)); (e > 1) != full {
				t.Fatalf("SPQR epoch %d", e)
			}
			if (types[spqr.None] == 120) == full {
				t.Fatalf("SPQR message types %v", types)
			}
			t.Logf("epochs %d, %d; message types %v", pqEpoch(alice), pqEpoch(bob), types)
		})
	}
}
