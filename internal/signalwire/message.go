package signalwire

import (
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
)

const (
	// Version is the message version of PQXDH sessions.
	Version = 4
	// VersionByte starts every message: (Version << 4) | 4.
	VersionByte = Version<<4 | 4
	// MACSize is the length of the truncated HMAC that ends a SignalMessage.
	MACSize = 8
	// AddressesSize is the length of the addresses field libsignal writes:
	// sender service id (17) || sender device (1) || recipient service id
	// (17) || recipient device (1).
	AddressesSize = 36
	// MaxPQRatchetSize bounds the SPQR payload. libsignal's messages carry
	// at most a few dozen bytes there (a header and one 32-byte chunk); the
	// bound only keeps a hostile peer from hiding bulk in the field.
	MaxPQRatchetSize = 1024
)

// Message types as libsignal's CiphertextMessageType numbers them.
const (
	TypeWhisper = 2 // a SignalMessage
	TypePreKey  = 3 // a PreKeySignalMessage
)

// SignalMessage is the message of an established session (proto2 fields
// 1-6 of wire.proto's SignalMessage).
type SignalMessage struct {
	// RatchetKey is the sender's current ratchet public key (field 1).
	RatchetKey *keys.PublicKey
	// Counter is the message's index in its sending chain (field 2).
	Counter uint32
	// PreviousCounter is max(n − 1, 0) for a previous sending chain of n
	// messages (field 3); libsignal writes it and ignores it on receipt.
	PreviousCounter uint32
	// Ciphertext is the AES-256-CBC ciphertext (field 4).
	Ciphertext []byte
	// PQRatchet is the SPQR message (field 5), nil when absent.
	PQRatchet []byte
	// Addresses binds sender and recipient addresses (field 6), nil when
	// absent.
	Addresses []byte
}

// AppendBody appends VersionByte || protobuf, the part of the message that
// the MAC covers (after the two identity keys), in libsignal's canonical
// form. The caller appends the MAC.
func (m *SignalMessage) AppendBody(dst []byte) ([]byte, error) {
	switch {
	case m.RatchetKey == nil:
		return dst, malformed("no ratchet key")
	case len(m.PQRatchet) > MaxPQRatchetSize:
		return dst, malformed("SPQR payload too long")
	case m.Addresses != nil && len(m.Addresses) != AddressesSize:
		return dst, malformed("addresses of the wrong length")
	}
	b := append(dst, VersionByte)
	b = appendBytesField(b, 1, m.RatchetKey.Encode())
	b = appendUint32Field(b, 2, m.Counter)
	b = appendUint32Field(b, 3, m.PreviousCounter)
	b = appendBytesField(b, 4, m.Ciphertext)
	if len(m.PQRatchet) > 0 {
		b = appendBytesField(b, 5, m.PQRatchet)
	}
	if m.Addresses != nil {
		b = appendBytesField(b, 6, m.Addresses)
	}
	return b, nil
}

// ParseSignalMessage decodes a whole SignalMessage, VersionByte || protobuf
// || MAC, and returns it with body (VersionByte || protobuf, what the MAC
// covers) and the MAC, both aliasing b. It checks the form only, not the
// MAC.
func ParseSignalMessage(b []byte) (m *SignalMessage, body, mac []byte, err error) {
	if len(b) < 1+MACSize {
		return nil, nil, nil, malformed("too short")
	}
	if b[0] != VersionByte {
		return nil, nil, nil, malformed("unknown version byte")
	}
	body, mac = b[:len(b)-MACSize], b[len(b)-MACSize:]
	r := reader{b: body[1:]}
	m = new(SignalMessage)
	var seen [7]bool
	for {
		num, typ, ok, err := r.next()
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			break
		}
		switch {
		case num == 2 || num == 3:
			if typ != wireVarint {
				return nil, nil, nil, malformed("wrong wire type")
			}
			v, err := r.uint32()
			if err != nil {
				return nil, nil, nil, err
			}
			if num == 2 {
				m.Counter = v
			} else {
				m.PreviousCounter = v
			}
		case num == 1 || (num >= 4 && num <= 6):
			if typ != wireBytes {
				return nil, nil, nil, malformed("wrong wire type")
			}
			v, err := r.bytes()
			if err != nil {
				return nil, nil, nil, err
			}
			switch num {
			case 1:
				if m.RatchetKey, err = keys.DecodePublicKey(v); err != nil {
					return nil, nil, nil, malformed("bad ratchet key")
				}
			case 4:
				m.Ciphertext = v
			case 5:
				if len(v) == 0 || len(v) > MaxPQRatchetSize {
					return nil, nil, nil, malformed("bad SPQR payload length")
				}
				m.PQRatchet = v
			case 6:
				if len(v) != AddressesSize {
					return nil, nil, nil, malformed("bad addresses length")
				}
				m.Addresses = v
			}
		default:
			return nil, nil, nil, malformed("unknown field")
		}
		seen[num] = true
	}
	if !seen[1] || !seen[2] || !seen[3] || !seen[4] {
		return nil, nil, nil, malformed("missing field")
	}
	return m, body, mac, nil
}

// PreKeySignalMessage is the initiator's message until the responder first
// answers (proto2 fields 1-8 of wire.proto's PreKeySignalMessage): the
// PQXDH header and a whole SignalMessage.
type PreKeySignalMessage struct {
	// HasPreKeyID says whether a one-time prekey was used; PreKeyID names it
	// (field 1).
	HasPreKeyID bool
	PreKeyID    uint32
	// BaseKey is the initiator's base key EK_A (field 2).
	BaseKey *keys.PublicKey
	// IdentityKey is the initiator's identity key IK_A (field 3).
	IdentityKey *keys.PublicKey
	// Message is the embedded SignalMessage, whole, with its MAC (field 4).
	Message []byte
	// RegistrationID is the initiator's registration id (field 5).
	RegistrationID uint32
	// SignedPreKeyID names the signed prekey (field 6).
	SignedPreKeyID uint32
	// KyberPreKeyID names the Kyber prekey (field 7).
	KyberPreKeyID uint32
	// KyberCiphertext is the PQXDH Kyber ciphertext, 0x08 || 1568 bytes
	// (field 8).
	KyberCiphertext []byte
}

// Append appends the whole message, VersionByte || protobuf, in libsignal's
// canonical form.
func (m *PreKeySignalMessage) Append(dst []byte) ([]byte, error) {
	switch {
	case m.BaseKey == nil || m.IdentityKey == nil:
		return dst, malformed("no base or identity key")
	case len(m.KyberCiphertext) != kyber.EncodedCiphertextSize || m.KyberCiphertext[0] != kyber.KeyType:
		return dst, malformed("bad Kyber ciphertext")
	}
	if _, _, _, err := ParseSignalMessage(m.Message); err != nil {
		return dst, err
	}
	b := append(dst, VersionByte)
	if m.HasPreKeyID {
		b = appendUint32Field(b, 1, m.PreKeyID)
	}
	b = appendBytesField(b, 2, m.BaseKey.Encode())
	b = appendBytesField(b, 3, m.IdentityKey.Encode())
	b = appendBytesField(b, 4, m.Message)
	b = appendUint32Field(b, 5, m.RegistrationID)
	b = appendUint32Field(b, 6, m.SignedPreKeyID)
	b = appendUint32Field(b, 7, m.KyberPreKeyID)
	b = appendBytesField(b, 8, m.KyberCiphertext)
	return b, nil
}

// ParsePreKeySignalMessage decodes a whole PreKeySignalMessage, including
// the form (not the MAC) of the embedded SignalMessage, which it returns
// parsed as inner. Byte fields alias b.
func ParsePreKeySignalMessage(b []byte) (m *PreKeySignalMessage, inner *SignalMessage, err error) {
	if len(b) < 1 {
		return nil, nil, malformed("too short")
	}
	if b[0] != VersionByte {
		return nil, nil, malformed("unknown version byte")
	}
	r := reader{b: b[1:]}
	m = new(PreKeySignalMessage)
	var seen [9]bool
	for {
		num, typ, ok, err := r.next()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			break
		}
		switch num {
		case 1, 5, 6, 7:
			if typ != wireVarint {
				return nil, nil, malformed("wrong wire type")
			}
			v, err := r.uint32()
			if err != nil {
				return nil, nil, err
			}
			switch num {
			case 1:
				m.HasPreKeyID, m.PreKeyID = true, v
			case 5:
				m.RegistrationID = v
			case 6:
				m.SignedPreKeyID = v
			case 7:
				m.KyberPreKeyID = v
			}
		case 2, 3, 4, 8:
			if typ != wireBytes {
				return nil, nil, malformed("wrong wire type")
			}
			v, err := r.bytes()
			if err != nil {
				return nil, nil, err
			}
			switch num {
			case 2:
				if m.BaseKey, err = keys.DecodePublicKey(v); err != nil {
					return nil, nil, malformed("bad base key")
				}
			case 3:
				if m.IdentityKey, err = keys.DecodePublicKey(v); err != nil {
					return nil, nil, malformed("bad identity key")
				}
			case 4:
				if inner, _, _, err = ParseSignalMessage(v); err != nil {
					return nil, nil, err
				}
				m.Message = v
			case 8:
				if len(v) != kyber.EncodedCiphertextSize || v[0] != kyber.KeyType {
					return nil, nil, malformed("bad Kyber ciphertext")
				}
				m.KyberCiphertext = v
			}
		default:
			return nil, nil, malformed("unknown field")
		}
		seen[num] = true
	}
	// libsignal writes every field but the one-time prekey id; a version-4
	// message without the Kyber fields is one libsignal refuses too.
	for _, n := range []int{2, 3, 4, 5, 6, 7, 8} {
		if !seen[n] {
			return nil, nil, malformed("missing field")
		}
	}
	return m, inner, nil
}
