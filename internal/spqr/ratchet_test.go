package spqr

import (
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
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
			payload := pqPayload(t, &m)
			rcv, dir := bob, AToB
			if m.From == "bob" {
				rcv, dir = alice, BToA
			}
			key, commit, err := rcv.Receive(payload)
			if err != nil {
				t.Fatalf("%s/%d: %v", s.Name, m.Seq, err)
			}
			pm, _, _ := ParseMessage(payload)
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

// TestSendIndexOverflow: once the sending chain has used every index,
// AppendSend refuses with ErrIndexOverflow and changes nothing, the braid
// included (the initiator's first send would sample a key pair).
func TestSendIndexOverflow(t *testing.T) {
	a, _ := newPair(5)
	a.chains.links[0].send.index = 1<<32 - 1
	before := fingerprint(a)
	if _, _, err := a.AppendSend(nil); !errors.Is(err, ErrIndexOverflow) {
		t.Fatalf("AppendSend: %v", err)
	}
	if fingerprint(a) != before || a.braid.state != keysUnsampled {
		t.Fatal("a refused send changed the state")
	}
	a.chains.links[0].send.index = 7
	msg, _, err := a.AppendSend([]byte{0xee})
	if err != nil || msg[0] != 0xee {
		t.Fatalf("AppendSend after: %v", err)
	}
	if m, _, err := ParseMessage(msg[1:]); err != nil || m.Index != 8 || m.Type != Hdr {
		t.Fatalf("AppendSend's message: %+v, %v", m, err)
	}
}
