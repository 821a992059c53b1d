package signalwire

import "github.com/ratchetkit/ratchetkit/keys"

// Sender Keys (libsignal's group messages) frame their two messages with a
// version byte of their own: (3 << 4) | 3. libsignal's SENDERKEY message
// version is still 3, independent of the one-to-one sessions' 4.
const (
	// SenderKeyVersion is the message version of Sender Key messages.
	SenderKeyVersion = 3
	// SenderKeyVersionByte starts both Sender Key messages.
	SenderKeyVersionByte = SenderKeyVersion<<4 | SenderKeyVersion
	// SenderKeySignatureSize is the XEdDSA signature that ends a
	// SenderKeyMessage.
	SenderKeySignatureSize = 64
	// DistributionIDSize is a distribution id's length, a UUID's 16 bytes.
	DistributionIDSize = 16
	// SenderChainKeySize is the length of a sender chain key.
	SenderChainKeySize = 32
	// TypeSenderKey is CiphertextMessageType's number for a
	// SenderKeyMessage.
	TypeSenderKey = 7
)

// SenderKeyMessage is one group message (proto2 fields 1-4 of wire.proto's
// SenderKeyMessage): SenderKeyVersionByte || protobuf || signature, the
// signature by the sender's signing key over everything before it.
type SenderKeyMessage struct {
	// DistributionID names the group (field 1, 16 bytes).
	DistributionID []byte
	// ChainID names the sender's chain (field 2).
	ChainID uint32
	// Iteration is the message's index in that chain (field 3).
	Iteration uint32
	// Ciphertext is the AES-256-CBC ciphertext (field 4).
	Ciphertext []byte
}

// AppendBody appends SenderKeyVersionByte || protobuf, what the signature
// covers, in libsignal's canonical form (all four fields, ascending).
func (m *SenderKeyMessage) AppendBody(dst []byte) ([]byte, error) {
	if len(m.DistributionID) != DistributionIDSize {
		return dst, malformed("distribution id of the wrong length")
	}
	b := append(dst, SenderKeyVersionByte)
	b = appendBytesField(b, 1, m.DistributionID)
	b = appendUint32Field(b, 2, m.ChainID)
	b = appendUint32Field(b, 3, m.Iteration)
	return appendBytesField(b, 4, m.Ciphertext), nil
}

// ParseSenderKeyMessage decodes a whole SenderKeyMessage and returns it with
// body (what the signature covers) and the signature, all aliasing b. It
// checks the form only, not the signature.
func ParseSenderKeyMessage(b []byte) (m *SenderKeyMessage, body, sig []byte, err error) {
	if len(b) < 1+SenderKeySignatureSize {
		return nil, nil, nil, malformed("too short")
	}
	if b[0] != SenderKeyVersionByte {
		return nil, nil, nil, malformed("unknown version byte")
	}
	body, sig = b[:len(b)-SenderKeySignatureSize], b[len(b)-SenderKeySignatureSize:]
	m = new(SenderKeyMessage)
	err = readSenderKeyFields(body[1:], 4, &m.DistributionID, &m.ChainID, &m.Iteration, func(_ int, v []byte) error {
		m.Ciphertext = v
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return m, body, sig, nil
}

// SenderKeyDistributionMessage hands a sender's chain to one member (proto2
// fields 1-5 of wire.proto's SenderKeyDistributionMessage):
// SenderKeyVersionByte || protobuf, with no signature or MAC of its own; it
// travels inside a pairwise session, which authenticates it.
type SenderKeyDistributionMessage struct {
	// DistributionID names the group (field 1, 16 bytes).
	DistributionID []byte
	// ChainID names the sender's chain (field 2).
	ChainID uint32
	// Iteration is the chain key's index (field 3).
	Iteration uint32
	// ChainKey is the chain key at Iteration (field 4, 32 bytes). Secret.
	ChainKey []byte
	// SigningKey is the sender's signing public key (field 5, 0x05 || u).
	SigningKey *keys.PublicKey
}

// Append appends the whole message in libsignal's canonical form.
func (m *SenderKeyDistributionMessage) Append(dst []byte) ([]byte, error) {
	switch {
	case len(m.DistributionID) != DistributionIDSize:
		return dst, malformed("distribution id of the wrong length")
	case len(m.ChainKey) != SenderChainKeySize:
		return dst, malformed("chain key of the wrong length")
	case m.SigningKey == nil:
		return dst, malformed("no signing key")
	}
	b := append(dst, SenderKeyVersionByte)
	b = appendBytesField(b, 1, m.DistributionID)
	b = appendUint32Field(b, 2, m.ChainID)
	b = appendUint32Field(b, 3, m.Iteration)
	b = appendBytesField(b, 4, m.ChainKey)
	return m.SigningKey.AppendEncode(appendVarint(appendVarint(b, 5<<3|wireBytes), 33)), nil
}

// ParseSenderKeyDistributionMessage decodes a whole distribution message.
// Byte fields alias b.
func ParseSenderKeyDistributionMessage(b []byte) (*SenderKeyDistributionMessage, error) {
	if len(b) < 1 {
		return nil, malformed("too short")
	}
	if b[0] != SenderKeyVersionByte {
		return nil, malformed("unknown version byte")
	}
	m := new(SenderKeyDistributionMessage)
	err := readSenderKeyFields(b[1:], 5, &m.DistributionID, &m.ChainID, &m.Iteration, func(num int, v []byte) error {
		var err error
		switch num {
		case 4:
			if len(v) != SenderChainKeySize {
				return malformed("bad chain key length")
			}
			m.ChainKey = v
		case 5:
			if m.SigningKey, err = keys.DecodePublicKey(v); err != nil {
				return malformed("bad signing key")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// readSenderKeyFields reads fields 1..n of either Sender Key message, all
// required, in ascending order, each once. The first three are the same in
// both (the distribution id, 16 bytes; the chain id and the iteration,
// uint32) and are stored through id, chain and iteration; f gets the bytes
// value of each later field.
func readSenderKeyFields(pb []byte, n int, id *[]byte, chain, iteration *uint32, f func(num int, v []byte) error) error {
	r := reader{b: pb}
	count := 0
	for {
		num, typ, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch {
		case num > n:
			return malformed("unknown field")
		case num == 2 || num == 3:
			if typ != wireVarint {
				return malformed("wrong wire type")
			}
			x, err := r.uint32()
			if err != nil {
				return err
			}
			if num == 2 {
				*chain = x
			} else {
				*iteration = x
			}
		default:
			if typ != wireBytes {
				return malformed("wrong wire type")
			}
			v, err := r.bytes()
			if err != nil {
				return err
			}
			if num == 1 {
				if len(v) != DistributionIDSize {
					return malformed("bad distribution id length")
				}
				*id = v
			} else if err := f(num, v); err != nil {
				return err
			}
		}
		count++
	}
	// Ascending order and no repeats mean n fields are fields 1..n.
	if count != n {
		return malformed("missing field")
	}
	return nil
}
