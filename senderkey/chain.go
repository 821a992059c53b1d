package senderkey

import (
	"github.com/ratchetkit/ratchetkit/internal/kdf"
	"github.com/ratchetkit/ratchetkit/internal/signalsuite"
)

// groupInfo is libsignal's HKDF info for a sender message key.
var groupInfo = []byte("WhisperGroup")

// messageKey is one message's IV and AES-256 key, expanded from its seed.
type messageKey struct {
	iv  [16]byte
	key [32]byte
}

func (k *messageKey) clear() {
	clear(k.iv[:])
	clear(k.key[:])
}

// deriveMessageKey expands a message-key seed: HKDF-SHA256 with no salt
// (RFC 5869's HashLen zeros) and info "WhisperGroup", 48 bytes, IV first.
func deriveMessageKey(seed *[32]byte) messageKey {
	var out [48]byte
	h := kdf.Get()
	h.HKDF(out[:], kdf.ZeroSalt(), seed[:], groupInfo)
	kdf.Put(h)
	var k messageKey
	copy(k.iv[:], out[:16])
	copy(k.key[:], out[16:])
	clear(out[:])
	return k
}

// chainStep is the sender chain's step, the same HMAC pair as the Double
// Ratchet's chain: the message-key seed with 0x01, the next chain key with
// 0x02.
func chainStep(ck *[32]byte) (seed, next [32]byte) { return signalsuite.ChainStep(ck) }
