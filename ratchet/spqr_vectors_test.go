package ratchet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"testing"
	"testing/cryptotest"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
)

// The SPQR vectors are a recorded live conversation between a Go
// initiator and libsignal 0.103 (testdata/libsignal/live.mjs as the
// responder of the vectors' "one_time_prekey" session) in which the braid
// goes through several epochs. Two libsignal parties could not serve:
// both SPQR and the Double Ratchet draw randomness, so a Go party can
// replay neither side of their transcript. Instead Go's randomness is made
// deterministic with testing/cryptotest.SetGlobalRandom, which replaces
// crypto/rand.Reader and the source every crypto/... package draws from
// internally: it covers the identity and ratchet keys (keys uses
// crypto/rand.Read), PQXDH's ephemeral key and its Kyber encapsulation
// (crypto/mlkem's internal source), and SPQR's key-pair seeds
// and encapsulation randomness (spqr.NewRatchet and spqr.ParseRatchet
// take the crypto/rand.Reader of the moment, so the session must be made
// after SetGlobalRandom, as here). The transcript holds every Go
// operation in order: each message Go sent, byte for byte, and each
// message Go was given (libsignal's, reordered, tampered copies and
// replays, as spqrTurns makes them) with whether Go took it.
// TestSPQRVectors re-runs the Go side from the same seed without Node.
// (cryptotest warns that how crypto/... draws randomness may change
// between Go releases: such a change fails the replay at Go's first
// message, and the transcript must then be made again.)
//
// Regenerate (needs Node and `npm ci` in testdata/libsignal):
//
//	go test ./ratchet -run TestSPQRVectors -update

const spqrTranscriptPath = "../testdata/libsignal/spqr_transcript.json"

// spqrTranscriptEpoch is the SPQR epoch the recorded conversation
// reaches each way: it runs until messages of that epoch have been
// decrypted in both directions, and 20 turns more; it has three epoch
// changes. spqrTranscriptMaxSteps bounds it.
const (
	spqrTranscriptEpoch    = 4
	spqrTranscriptMaxSteps = 2000
)

type spqrTranscript struct {
	About string `json:"about"`
	// Session names the vectors.json session whose responder libsignal
	// played; Bundle is that responder's prekey bundle, which Go used.
	Session string               `json:"session"`
	Bundle  libsignaltest.Bundle `json:"bundle"`
	// GoSeed is the seed of cryptotest.SetGlobalRandom; ScheduleSeed seeds
	// spqrTurns' schedule, which ran Steps turns.
	GoSeed       uint64      `json:"go_seed"`
	ScheduleSeed uint64      `json:"schedule_seed"`
	Steps        int         `json:"steps"`
	Events       []spqrEvent `json:"events"`
	// Final is a libsignal message sent after the conversation and not
	// delivered in it, for the negative cases.
	Final spqrEvent `json:"final"`
}

// spqrEvent is one Go operation: "send" (Go encrypted Plaintext into
// Wire) or "recv" (Go was given Wire, and OK says whether it decrypted
// it to Plaintext). Epoch is the SPQR epoch in the message's header.
type spqrEvent struct {
	Op        string `json:"op"`
	Type      int    `json:"type"`
	Wire      string `json:"wire"`
	Plaintext string `json:"plaintext"`
	OK        bool   `json:"ok"`
	Epoch     uint64 `json:"epoch"`
}

func (e *spqrEvent) msg(t testing.TB) signallive.Msg {
	return signallive.Msg{Type: e.Type, Wire: libsignaltest.Hex(t, e.Wire), Plaintext: []byte(e.Plaintext)}
}

// spqrEpochOf returns the SPQR epoch of a Signal message, 0 without an
// SPQR payload.
func spqrEpochOf(t testing.TB, typ int, wire []byte) uint64 {
	t.Helper()
	sm, _, _, err := signalwire.ParseSignalMessage(unwrap(t, typ, wire))
	if err != nil {
		t.Fatal(err)
	}
	if len(sm.PQRatchet) == 0 {
		return 0
	}
	m, _, err := spqr.ParseMessage(sm.PQRatchet)
	if err != nil {
		t.Fatal(err)
	}
	return m.Epoch
}

func spqrEventOf(t testing.TB, op string, m signallive.Msg, ok bool) spqrEvent {
	return spqrEvent{Op: op, Type: m.Type, Wire: hex.EncodeToString(m.Wire), Plaintext: string(m.Plaintext), OK: ok, Epoch: spqrEpochOf(t, m.Type, m.Wire)}
}

func TestSPQRVectors(t *testing.T) {
	if *update {
		recordSPQRTranscript(t)
	}
	b, err := os.ReadFile(spqrTranscriptPath)
	if err != nil {
		t.Fatal(err)
	}
	var tr spqrTranscript
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	s := replaySPQRTranscript(t, &tr, 0)
	t.Run("negative", func(t *testing.T) { spqrTranscriptNegatives(t, &tr, s) })
	// The same replay with Go's session saved and loaded every 7 events:
	// the state holds everything the next messages depend on.
	t.Run("reloaded", func(t *testing.T) { replaySPQRTranscript(t, &tr, 7) })
}

// recordSPQRTranscript holds the live conversation and writes the
// transcript, after checking that a replay reproduces it.
func recordSPQRTranscript(t *testing.T) {
	t.Setenv("RATCHETKIT_REQUIRE_LIBSIGNAL", "1")
	v := libsignaltest.Load(t)
	ls := &v.Sessions[0]
	tr := &spqrTranscript{
		About: "A live conversation between a Go Signal session (initiator, full SPQR, randomness from " +
			"testing/cryptotest.SetGlobalRandom(go_seed)) and libsignal 0.103 (testdata/libsignal/live.mjs as the " +
			"responder of vectors.json's session). Events are Go's operations in order; made by " +
			"`go test ./ratchet -run TestSPQRVectors -update`.",
		Session: ls.Name, Bundle: ls.Bundle, GoSeed: 0x5eed5a9a, ScheduleSeed: 13,
	}
	p := libsignaltest.Live(t, ls.Name)
	cryptotest.SetGlobalRandom(t, tr.GoSeed)
	s, goEnd, lsEnd := liveGoInitiator(t, p, &libsignaltest.Session{Bundle: tr.Bundle}, nil)
	rec := goEnd
	rec.Send = func(pt []byte) signallive.Msg {
		m := goEnd.Send(pt)
		tr.Events = append(tr.Events, spqrEventOf(t, "send", m, true))
		return m
	}
	rec.Recv = func(m signallive.Msg) error {
		err := goEnd.Recv(m)
		tr.Events = append(tr.Events, spqrEventOf(t, "recv", m, err == nil))
		return err
	}
	stats := spqrTurns(t, mrand.New(mrand.NewPCG(tr.ScheduleSeed, 7)), rec, lsEnd, func() []byte { return state(t, s) },
		func() bool { return spqrTranscriptDone(tr.Events) })
	tr.Steps = stats["steps"]
	t.Logf("recorded %v, Go's SPQR epoch %d", stats, pqEpoch(s))
	tr.Final = spqrEventOf(t, "recv", lsEnd.Send([]byte("final: held back for the negative cases")), true)
	out, err := json.MarshalIndent(tr, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	// A replay from a fresh stream must give the same bytes before the
	// transcript is kept.
	replaySPQRTranscript(t, tr, 0)
	if err := os.WriteFile(spqrTranscriptPath, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// spqrTranscriptDone reports whether events include, each way, a message
// of SPQR epoch spqrTranscriptEpoch or later that its receiver decrypted. Go's messages are
// counted when Go sends them; libsignal refuses none in spqrTurns.
func spqrTranscriptDone(events []spqrEvent) bool {
	var goSent, lsSent bool
	for i := range events {
		e := &events[i]
		goSent = goSent || (e.Op == "send" && e.Epoch >= spqrTranscriptEpoch)
		lsSent = lsSent || (e.Op == "recv" && e.OK && e.Epoch >= spqrTranscriptEpoch)
	}
	return goSent && lsSent
}

// spqrTurns is the recorded conversation: the ends take turns (now and
// then one takes two), and at its turn an end first reads what is queued
// for it, reordered within 3 positions, about one message in 16 lost, a
// tampered copy (signallive.TamperInner) of one delivery in 8 refused
// first and a replay of one in 10 refused after; then it sends 1 to 3
// messages. Refusals must leave Go's state unchanged. Unlike
// signallive.Conversation, whose queues grow without bound (it sends two
// messages for each it delivers, so a message waits hundreds of steps),
// every turn drains its queue: the braid then moves at a messaging
// pace, and about 100 messages (both ways) take it through an epoch. It runs until
// done holds, then 20 turns more, and returns its counts.
func spqrTurns(t *testing.T, rng *mrand.Rand, goEnd, lsEnd signallive.End, goState func() []byte, done func() bool) map[string]int {
	ends := [2]signallive.End{goEnd, lsEnd}
	var queue [2][]signallive.Msg
	stats := map[string]int{}
	refused := func(i int, m signallive.Msg, what string) {
		var before []byte
		if i == 0 {
			before = goState()
		}
		if err := ends[i].Recv(m); err == nil {
			t.Fatalf("end %d accepted a %s message", i, what)
		}
		if i == 0 && !bytes.Equal(before, goState()) {
			t.Fatalf("a %s message changed Go's state", what)
		}
		stats[what+" refused"]++
	}
	extra := -1
	i := 0
	for step := 0; extra != 0; step++ {
		if step == spqrTranscriptMaxSteps {
			t.Fatalf("SPQR epoch %d not reached each way in %d turns: %v", spqrTranscriptEpoch, step, stats)
		}
		if extra < 0 && done() {
			extra = 20
		}
		if extra > 0 {
			extra--
		}
		stats["steps"]++
		for q := &queue[i]; len(*q) > 0; {
			k := rng.IntN(min(3, len(*q)))
			m := (*q)[k]
			*q = append((*q)[:k], (*q)[k+1:]...)
			if rng.IntN(16) == 0 {
				stats["lost"]++
				continue
			}
			if rng.IntN(8) == 0 {
				refused(i, signallive.Msg{Type: m.Type, Wire: signallive.TamperInner(t, rng, m), Plaintext: m.Plaintext}, "tampered")
			}
			if err := ends[i].Recv(m); err != nil {
				t.Fatalf("turn %d: end %d refused a message: %v", step, i, err)
			}
			stats["delivered"]++
			if rng.IntN(10) == 0 {
				refused(i, m, "replay")
			}
		}
		if ends[i].CanSend() {
			for range 1 + rng.IntN(3) {
				pt := fmt.Appendf(nil, "turn %d from %d: %s", step, i, bytes.Repeat([]byte{'x'}, rng.IntN(40)))
				queue[1-i] = append(queue[1-i], ends[i].Send(pt))
				stats[[]string{"sent by go", "sent by libsignal"}[i]]++
			}
		}
		if rng.IntN(5) != 0 {
			i = 1 - i
		}
	}
	return stats
}

// replaySPQRTranscript re-runs the Go side of the transcript from its
// seed: every message Go sends must be the recorded one byte for byte,
// every message Go is given must decrypt to the recorded plaintext (or be
// refused, as it was, without changing the state), each message's SPQR
// epoch must be the recorded one, and the conversation must carry
// messages of epoch spqrTranscriptEpoch (4) or later each way. With
// reloadEvery > 0 the session is replaced by a copy loaded from its
// serialized state every reloadEvery events. It returns the Go session.
func replaySPQRTranscript(t *testing.T, tr *spqrTranscript, reloadEvery int) *Session {
	t.Helper()
	cryptotest.SetGlobalRandom(t, tr.GoSeed)
	s, goEnd, _ := liveGoInitiator(t, nil, &libsignaltest.Session{Bundle: tr.Bundle}, nil)
	var sent, received, refused int
	var maxEpoch [2]uint64 // sent by Go, by libsignal (and decrypted)
	for i := range tr.Events {
		if reloadEvery > 0 && i%reloadEvery == reloadEvery-1 {
			*s = *clone(t, s)
		}
		e := &tr.Events[i]
		m := e.msg(t)
		if got := spqrEpochOf(t, m.Type, m.Wire); got != e.Epoch {
			t.Fatalf("event %d: SPQR epoch %d, recorded %d", i, got, e.Epoch)
		}
		switch e.Op {
		case "send":
			got := goEnd.Send(m.Plaintext)
			if got.Type != m.Type || !bytes.Equal(got.Wire, m.Wire) {
				t.Fatalf("event %d: Go's message differs from the recorded one", i)
			}
			sent++
			maxEpoch[0] = max(maxEpoch[0], e.Epoch)
		case "recv":
			before := state(t, s)
			err := goEnd.Recv(m)
			if (err == nil) != e.OK {
				t.Fatalf("event %d: Decrypt = %v, recorded ok %v", i, err, e.OK)
			}
			if err != nil {
				if !bytes.Equal(before, state(t, s)) {
					t.Fatalf("event %d: a refused message changed the state", i)
				}
				refused++
				continue
			}
			received++
			maxEpoch[1] = max(maxEpoch[1], e.Epoch)
		default:
			t.Fatalf("event %d: op %q", i, e.Op)
		}
	}
	t.Logf("%d events: Go sent %d, decrypted %d of libsignal's, refused %d; highest SPQR epoch sent by Go %d, by libsignal %d; Go's braid at epoch %d",
		len(tr.Events), sent, received, refused, maxEpoch[0], maxEpoch[1], pqEpoch(s))
	if maxEpoch[0] < spqrTranscriptEpoch || maxEpoch[1] < spqrTranscriptEpoch || refused == 0 {
		t.Fatalf("the transcript does not reach SPQR epoch %d both ways (%v) or has no refusal", spqrTranscriptEpoch, maxEpoch)
	}
	return s
}

// spqrTranscriptNegatives: the held-back libsignal message, tampered in
// its MAC, its ciphertext, its SPQR payload (a chunk byte, the epoch),
// and a recorded message delivered again are refused without changing
// Go's state; the genuine held-back message then decrypts, and once more
// is a duplicate.
func spqrTranscriptNegatives(t *testing.T, tr *spqrTranscript, s *Session) {
	m := tr.Final.msg(t)
	wire := unwrap(t, m.Type, m.Wire)
	sm, _, _, err := signalwire.ParseSignalMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	pq := bytes.Index(wire, sm.PQRatchet)
	ct := bytes.Index(wire, sm.Ciphertext)
	if len(sm.PQRatchet) < 2 || pq < 0 || ct < 0 {
		t.Fatal("the held-back message has no SPQR payload or ciphertext to tamper with")
	}
	flip := func(at int) []byte {
		b := bytes.Clone(wire)
		b[at] ^= 0x04
		return b
	}
	var lastLS []byte
	for i := range tr.Events {
		if e := &tr.Events[i]; e.Op == "recv" && e.OK {
			lastLS = unwrap(t, e.Type, libsignaltest.Hex(t, e.Wire))
		}
	}
	for name, bad := range map[string][]byte{
		"mac":            flip(len(wire) - 1),
		"ciphertext":     flip(ct + len(sm.Ciphertext)/2),
		"spqr chunk":     flip(pq + len(sm.PQRatchet) - 1),
		"spqr epoch":     flip(pq + 1),
		"version":        flip(0),
		"already gotten": lastLS,
	} {
		before := state(t, s)
		pt, err := s.Decrypt(bad)
		if err == nil || pt != nil {
			t.Fatalf("%s: a tampered message decrypted", name)
		}
		if !bytes.Equal(before, state(t, s)) {
			t.Fatalf("%s: a refused message (%v) changed the state", name, err)
		}
	}
	pt, err := s.Decrypt(wire)
	if err != nil || string(pt) != tr.Final.Plaintext {
		t.Fatalf("the held-back message: %v", err)
	}
	if _, err := s.Decrypt(wire); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("the held-back message again: %v", err)
	}
}
