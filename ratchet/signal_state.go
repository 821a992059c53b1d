package ratchet

import (
	"encoding/binary"
	"slices"

	"github.com/ratchetkit/ratchetkit/internal/curve"
	"github.com/ratchetkit/ratchetkit/internal/spqr"
)

// stateVersionSignal is the state layout of Signal sessions. Profile v1
// sessions keep writing version 1.
const stateVersionSignal = 2

// The state blob of a Signal session, version 2, in the notation of the
// version 1 layout (state.go):
//
//	struct {
//	    opaque magic[4] = "rkdr";
//	    uint8  version = 2;
//	    opaque local_identity[32];  /* u-coordinates, canonical */
//	    opaque remote_identity[32];
//	    opaque root_key[32];
//	    opaque dhs_private[32];
//	    opaque dhs_public[32];      /* canonical */
//	    uint8  phase;               /* 0 responder, 1 initiator, 2 received */
//	    select (phase) {
//	        case 0:
//	            struct {};
//	        case 1, 2:
//	            opaque cks[32];
//	            uint32 ns;          /* at most 2^32-2 */
//	            uint32 pn;          /* the previous_counter sent, at most 2^32-2 */
//	            uint8  chain_count; /* 1..5 */
//	            ReceivingChain chains[chain_count];  /* oldest first */
//	            SkippedChain skipped<0..2^24-1>;      /* as in version 1 */
//	    };
//	    uint8  pq_kind;             /* 1 = minimal SPQR (internal/spqr.Minimal,
//	                                   written before full SPQR; moves to
//	                                   full SPQR when loaded and used),
//	                                   2 = full SPQR (internal/spqr.Ratchet) */
//	    opaque pq_state<0..2^24-1>; /* the kind's AppendBinary */
//	} SignalSessionState;
//
//	struct {
//	    opaque ratchet_key[32];     /* canonical, distinct across chains */
//	    opaque chain_key[32];
//	    uint32 next;                /* first message number not derived */
//	} ReceivingChain;
//
// A skipped run's ratchet_key is one of the chains' keys and its numbers
// are below that chain's next; each chain has at most 2000 skipped seeds
// (the stored "message keys" are libsignal's 32-byte seeds). Nothing may
// follow the structure.

const signalFixedSize = len(stateMagic) + 1 + 5*32 + 1

func (s *Session) signalMarshaledSize() int {
	n := signalFixedSize + 1 + 3 + s.sig.pq.MarshaledSize()
	if s.phase != phaseResponder {
		n += 32 + 4 + 4 + 1 + s.sig.nchains*(32+32+4) + 3 + s.skipped.marshaledSize()
	}
	return n
}

func (s *Session) appendSignal(b []byte) []byte {
	b = slices.Grow(b, s.signalMarshaledSize())
	b = append(b, stateMagic...)
	b = append(b, stateVersionSignal)
	b = append(b, s.sig.localID[:]...)
	b = append(b, s.sig.remoteID[:]...)
	b = append(b, s.rk[:]...)
	b = append(b, s.dhsPriv[:]...)
	b = append(b, s.dhsPub[:]...)
	b = append(b, s.phase)
	if s.phase != phaseResponder {
		b = append(b, s.cks[:]...)
		b = binary.BigEndian.AppendUint32(b, s.ns)
		b = binary.BigEndian.AppendUint32(b, s.pn)
		b = append(b, byte(s.sig.nchains))
		for _, c := range s.sig.chains[:s.sig.nchains] {
			b = append(b, c.pub[:]...)
			b = append(b, c.ck[:]...)
			b = binary.BigEndian.AppendUint32(b, c.next)
		}
		b = s.skipped.appendBinary(b)
	}
	b = append(b, pqKind(s.sig.pq))
	b = appendUint24(b, s.sig.pq.MarshaledSize())
	return s.sig.pq.AppendBinary(b)
}

func (s *Session) parseSignal(b []byte) error {
	s.proto, s.sig = Signal, new(signalState)
	r := reader{b: b}
	copy(s.sig.localID[:], r.bytes(32))
	copy(s.sig.remoteID[:], r.bytes(32))
	copy(s.rk[:], r.bytes(32))
	copy(s.dhsPriv[:], r.bytes(32))
	copy(s.dhsPub[:], r.bytes(32))
	s.phase = r.u8()
	if r.bad {
		return invalid("truncated")
	}
	if !curve.IsCanonical(&s.sig.localID) || !curve.IsCanonical(&s.sig.remoteID) || !curve.IsCanonical(&s.dhsPub) {
		return invalid("non-canonical key")
	}
	s.sig.localKey, s.sig.remoteKey = storedKey(&s.sig.localID), storedKey(&s.sig.remoteID)
	switch s.phase {
	case phaseResponder:
	case phaseInitiator, phaseEstablished:
		copy(s.cks[:], r.bytes(32))
		s.ns = r.u32()
		s.pn = r.u32()
		s.sig.nchains = int(r.u8())
		if r.bad || s.sig.nchains < 1 || s.sig.nchains > SignalMaxReceivingChains {
			return invalid("receiving chains")
		}
		for i := range s.sig.chains[:s.sig.nchains] {
			c := &s.sig.chains[i]
			copy(c.pub[:], r.bytes(32))
			copy(c.ck[:], r.bytes(32))
			c.next = r.u32()
			if r.bad {
				return invalid("truncated")
			}
			if !curve.IsCanonical(&c.pub) || c.next > maxCounter+1 {
				return invalid("receiving chain")
			}
			for j := range i {
				if s.sig.chains[j].pub == c.pub {
					return invalid("two receiving chains on one ratchet key")
				}
			}
		}
		skipped := r.bytes(r.u24())
		if r.bad {
			return invalid("truncated")
		}
		if s.ns > maxCounter || s.pn > maxCounter {
			return invalid("counter out of range")
		}
		if err := s.skipped.parse(skipped, signalMaxStored); err != nil {
			return err
		}
		var perChain [SignalMaxReceivingChains]int
		for _, c := range s.skipped.chains {
			ci := s.findChain(&c.pub)
			if ci < 0 || s.skipped.at(c.end-1).n >= s.sig.chains[ci].next {
				return invalid("skipped seed of no receiving chain")
			}
			if perChain[ci] += c.live; perChain[ci] > SignalMaxKeysPerChain {
				return invalid("more skipped seeds than a chain keeps")
			}
		}
	default:
		return invalid("unknown phase")
	}
	kind := r.u8()
	pq := r.bytes(r.u24())
	if r.bad {
		return invalid("truncated")
	}
	if len(r.b) != 0 {
		return invalid("trailing bytes")
	}
	var err error
	if s.sig.pq, err = parsePQ(kind, pq); err != nil {
		return err
	}
	if m, ok := s.sig.pq.(*spqr.Minimal); ok {
		s.sig.pq, err = upgradeMinimal(m, s.phase)
	}
	return err
}

// upgradeMinimal starts the move of a state of minimal SPQR (pq_kind 1,
// written before full SPQR) to full SPQR. spqr.Minimal.Upgrade keeps the
// first epoch's chains where they are and starts the braid afresh, which
// a peer's braid, libsignal's included, can only be waiting for (see
// Upgrade and SIGNAL.md). The state does not record which side it is once
// it has received, so the direction comes from the chains
// (Minimal.Initiator). Before the session has received, one chain is
// still at index 0 and telling is free: it is checked here, against the
// phase, and a state that is neither side's, or the other side's, is
// refused at load. An established state is told at its first use instead
// (see upgradePQ), where one that is neither side's fails its messages
// with ErrInvalidState and one too long in both directions to tell
// cheaply (spqr.MaxUpgradeSteps) stays on minimal SPQR, which libsignal
// accepts as it did before.
func upgradeMinimal(m *spqr.Minimal, phase byte) (pqRatchet, error) {
	u := &upgradePQ{m: m}
	if phase == phaseEstablished {
		return u, nil
	}
	if err := u.resolve(); err != nil {
		m.Clear()
		return nil, err
	}
	if u.minimal {
		return m, nil
	}
	if (phase == phaseInitiator) != u.initiator {
		m.Clear()
		return nil, invalid("SPQR state of the other side")
	}
	return u, nil
}
