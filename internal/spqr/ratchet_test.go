package spqr

import (
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
)

// TestRatchetReceivesLibsignal feeds every SPQR message of libsignal's
// transcripts, in delivery order, to a Go Ratchet of the receiving side:
// each must be accepted with the key the first epoch's chains give (the
// keys the transcript replay in internal/signalsuite checks against
// libsignal's MACs), and Bob's braid must verify Alice's header and move
// to encapsulating.
func TestRatchetReceivesLibsignal(t *testing.T) {
	v := libsignaltest.Load(t)
	for i := range v.Sessions {
		s := &v.Sessions[i]
		pqr := sessionPQRKey(t, s)
		alice, bob := NewRatchet(&pqr, true), NewRatchet(&pqr, false)
		e := Start(&pqr)
		for _, m := range s.Messages {
			wire := libsignaltest.Hex(t, m.Wire)
			if m.Type == signalwire.TypePreKey {
				pk, _, err := signalwire.ParsePreKeySignalMessage(wire)
				if err != nil {
					t.Fatal(err)
				}
				wire = pk.Message
			}
			sm, _, _, err := signalwire.ParseSignalMessage(wire)
			if err != nil {
				t.Fatal(err)
			}
			rcv, dir := bob, AToB
			if m.From == "bob" {
				rcv, dir = alice, BToA
			}
			key, commit, err := rcv.Receive(sm.PQRatchet)
			if err != nil {
				t.Fatalf("%s/%d: %v", s.Name, m.Seq, err)
			}
			pm, _, _ := ParseMessage(sm.PQRatchet)
			c := e.Chain(dir)
			want, _ := c.KeyAt(pm.Index)
			if key != want {
				t.Fatalf("%s/%d: key differs from the first epoch's chain", s.Name, m.Seq)
			}
			commit()
		}
		if bob.braid.state != headerReceived || bob.Epoch() != 1 {
			t.Fatalf("%s: Bob's braid is in state %d, epoch %d", s.Name, bob.braid.state, bob.Epoch())
		}
	}
}
