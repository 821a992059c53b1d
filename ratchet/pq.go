package ratchet

import "github.com/ratchetkit/ratchetkit/internal/spqr"

// pqRatchet is the post-quantum ratchet that runs beside the Double Ratchet
// in libsignal's sessions (SPQR; libsignal calls the pair the triple
// ratchet). Every message carries its payload, and its key salts the
// message's keys. It is the one part of a Signal session that full SPQR
// replaces: the Double Ratchet never looks inside the payload.
//
// Recv must not change the state; Commit applies a payload Recv accepted,
// and is called only once the message it came with has authenticated, so
// that a refused message leaves the SPQR state untouched too.
type pqRatchet interface {
	// Send appends the payload of the next message to dst and returns it
	// with the message's key.
	Send(dst []byte) ([]byte, [32]byte, error)
	// Recv returns the key of a received payload.
	Recv(payload []byte) ([32]byte, error)
	// Commit applies a payload that Recv accepted.
	Commit(payload []byte)
	// AppendBinary appends the state; MarshaledSize is its length.
	AppendBinary(b []byte) []byte
	MarshaledSize() int
	// Clear wipes the state's secrets.
	Clear()
}

// The pq_kind byte of a Signal state names the implementation whose state
// follows. Never renumber: full SPQR takes a new number, and states of the
// minimal kind keep parsing.
const pqKindMinimal = 1

var _ pqRatchet = (*spqr.Minimal)(nil)

// parsePQ restores a pqRatchet of the given kind.
func parsePQ(kind byte, b []byte) (pqRatchet, error) {
	switch kind {
	case pqKindMinimal:
		m, err := spqr.ParseMinimal(b)
		if err != nil {
			return nil, invalid("SPQR state")
		}
		return m, nil
	}
	return nil, invalid("unknown SPQR kind")
}
