package senderkey

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
)

// DistributionID names a group's sender keys: a UUID, 16 bytes.
type DistributionID [signalwire.DistributionIDSize]byte

// NewDistributionID returns a random (version 4) UUID.
func NewDistributionID() DistributionID {
	var id DistributionID
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// String formats id as a UUID, as libsignal's APIs take it.
func (id DistributionID) String() string {
	h := hex.EncodeToString(id[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ErrMalformed is returned for every message or record that is not in its
// canonical form; the wrapped text says what is wrong, never what the bytes
// were.
var ErrMalformed = errors.New("senderkey: malformed input")

func malformed(err error) error { return fmt.Errorf("%w: %w", ErrMalformed, err) }

// DistributionMessage gives a member a sender's chain: libsignal's
// SenderKeyDistributionMessage. It is secret (it carries the chain key) and
// must travel inside a pairwise session. It prints without the chain key.
type DistributionMessage struct {
	DistributionID DistributionID
	// ChainID names the chain, a random 31-bit number (libsignal's Java
	// heritage).
	ChainID uint32
	// Iteration is the index of the chain key's next message.
	Iteration uint32
	// ChainKey is the chain key at Iteration.
	ChainKey [32]byte
	// SigningKey verifies the chain's messages.
	SigningKey *keys.PublicKey
}

// ParseDistributionMessage decodes a distribution message.
func ParseDistributionMessage(b []byte) (*DistributionMessage, error) {
	w, err := signalwire.ParseSenderKeyDistributionMessage(b)
	if err != nil {
		return nil, malformed(err)
	}
	m := &DistributionMessage{ChainID: w.ChainID, Iteration: w.Iteration, SigningKey: w.SigningKey}
	copy(m.DistributionID[:], w.DistributionID)
	copy(m.ChainKey[:], w.ChainKey)
	return m, nil
}

// Bytes encodes m as libsignal does. It panics if m has no SigningKey, a
// caller's bug.
func (m *DistributionMessage) Bytes() []byte {
	w := signalwire.SenderKeyDistributionMessage{
		DistributionID: m.DistributionID[:], ChainID: m.ChainID, Iteration: m.Iteration,
		ChainKey: m.ChainKey[:], SigningKey: m.SigningKey,
	}
	b, err := w.Append(make([]byte, 0, 128))
	if err != nil {
		panic("senderkey: DistributionMessage without a signing key")
	}
	return b
}

// String prints the public fields and REDACTED for the chain key.
func (m DistributionMessage) String() string {
	return fmt.Sprintf("senderkey.DistributionMessage{%v chain %d iteration %d chain key REDACTED signing key %x}",
		m.DistributionID, m.ChainID, m.Iteration, m.SigningKey)
}

// GoString is String.
func (m DistributionMessage) GoString() string { return m.String() }

// Format prints String for every verb.
func (m DistributionMessage) Format(f fmt.State, _ rune) { io.WriteString(f, m.String()) }

// Message is a group message's public header: libsignal's SenderKeyMessage
// without its ciphertext's meaning. ParseMessage checks only its form; use
// DistributionID to find the record that decrypts it.
type Message struct {
	DistributionID DistributionID
	ChainID        uint32
	Iteration      uint32
}

// ParseMessage decodes a group message's header without verifying it.
func ParseMessage(b []byte) (*Message, error) {
	w, _, _, err := signalwire.ParseSenderKeyMessage(b)
	if err != nil {
		return nil, malformed(err)
	}
	m := &Message{ChainID: w.ChainID, Iteration: w.Iteration}
	copy(m.DistributionID[:], w.DistributionID)
	return m, nil
}
