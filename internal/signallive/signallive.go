// Package signallive drives live conversations between a Go party and
// libsignal running in Node (testdata/libsignal/live.mjs, started by
// libsignaltest.Live): the seeded steps, reordering, tampering and replays
// that the live tests of the packages speaking the Signal protocol share.
// It is test support, apart from libsignaltest because it needs
// signalwire, whose own tests import libsignaltest.
package signallive

import (
	"bytes"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
)

// Msg is a message in flight between a Go party and libsignal: its
// libsignal type (signalwire.TypeWhisper or TypePreKey), its bytes and
// the plaintext it must decrypt to.
type Msg struct {
	Type      int
	Wire      []byte
	Plaintext []byte
}

// End is one side of a live conversation: Send makes a message, Recv
// takes one and reports an error unless it decrypted to its plaintext.
type End struct {
	CanSend func() bool
	Send    func(pt []byte) Msg
	Recv    func(m Msg) error
}

// CheckReply turns live.mjs's answer to a decrypt request into Recv's
// error, setting *ok when libsignal decrypted the expected plaintext.
func CheckReply(r libsignaltest.Reply, pt []byte, ok *bool) error {
	if !r.OK {
		return fmt.Errorf("libsignal: %s", r.Error)
	}
	if r.Plaintext != hex.EncodeToString(pt) {
		return fmt.Errorf("libsignal decrypted another plaintext")
	}
	*ok = true
	return nil
}

// Conversation runs seeded steps between goEnd and lsEnd: bursts of 1 to
// 3 messages either way, deliveries reordered by up to 5 positions, about
// one message in 2*rate lost (never delivered), a tampered copy of about
// one delivery in rate refused before the original decrypts, and a replay
// (a duplicate delivery) of about one in rate+2 refused. goState returns
// the Go side's state and whether there is one yet; a refused message
// must leave it unchanged. It fails the test on any other outcome and on
// a conversation that tested little, and returns its counts.
func Conversation(t testing.TB, rng *mrand.Rand, goEnd, lsEnd End, steps, rate int, goState func() ([]byte, bool)) map[string]int {
	t.Helper()
	ends := [2]End{goEnd, lsEnd}
	var queue [2][]Msg // queue[i]: messages to end i
	stats := map[string]int{}
	// refused delivers m to end i, which must refuse it without changing
	// Go's state.
	refused := func(step, i int, m Msg, what string) {
		t.Helper()
		before, has := goState()
		if err := ends[i].Recv(m); err == nil {
			t.Fatalf("step %d: end %d accepted %s", step, i, what)
		}
		if after, _ := goState(); i == 0 && has && !bytes.Equal(before, after) {
			t.Fatalf("step %d: %s changed Go's state", step, what)
		}
		stats[what+" refused"]++
	}
	for step := range steps {
		i := rng.IntN(2)
		if rng.IntN(2) == 0 {
			if !ends[i].CanSend() {
				continue
			}
			for range 1 + rng.IntN(3) {
				pt := []byte(fmt.Sprintf("step %d from %d: %s", step, i, bytes.Repeat([]byte{'x'}, rng.IntN(40))))
				m := ends[i].Send(pt)
				queue[1-i] = append(queue[1-i], m)
				stats[fmt.Sprintf("sent by %s, type %d", []string{"go", "libsignal"}[i], m.Type)]++
			}
			continue
		}
		q := queue[i]
		if len(q) == 0 {
			continue
		}
		k := rng.IntN(min(len(q), 6))
		m := q[k]
		queue[i] = append(q[:k], q[k+1:]...)
		if rng.IntN(2*rate) == 0 {
			stats["lost"]++
			continue
		}
		if rng.IntN(rate) == 0 {
			refused(step, i, Msg{m.Type, TamperInner(t, rng, m), m.Plaintext}, "tampered")
		}
		if err := ends[i].Recv(m); err != nil {
			t.Fatalf("step %d: end %d refused a message: %v", step, i, err)
		}
		stats["delivered"]++
		if rng.IntN(rate+2) == 0 {
			refused(step, i, m, "replay")
		}
	}
	if stats["delivered"] < steps/4 || stats["lost"] == 0 || stats["tampered refused"] == 0 || stats["replay refused"] == 0 {
		t.Fatalf("a conversation that tests little: %v", stats)
	}
	return stats
}

// TamperInner flips one bit near the end of the SignalMessage in m (for a
// PreKeySignalMessage, inside its message field: the outer fields are not
// authenticated, and a session whose base key matches ignores them in
// libsignal).
func TamperInner(t testing.TB, rng *mrand.Rand, m Msg) []byte {
	t.Helper()
	flip := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-1-rng.IntN(min(40, len(b)-1))] ^= byte(1 << rng.IntN(8))
		return b
	}
	if m.Type != signalwire.TypePreKey {
		return flip(m.Wire)
	}
	pk, _, err := signalwire.ParsePreKeySignalMessage(m.Wire)
	if err != nil {
		t.Fatal(err)
	}
	// Append parses the inner message again: a flip that breaks its
	// protobuf framing (a short message's length bytes lie in the last
	// 40) is drawn again.
	inner := pk.Message
	for range 100 {
		pk.Message = flip(inner)
		if out, err := pk.Append(nil); err == nil {
			return out
		}
	}
	t.Fatal("signallive: no bit of the inner message could be flipped")
	return nil
}
