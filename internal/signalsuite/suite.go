package signalsuite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/internal/kdf"
	"github.com/ratchetkit/ratchetkit/keys"
)

// KeySize is the length of root keys, chain keys and message-key seeds.
const KeySize = 32

// TagSize is the length of the truncated MAC.
const TagSize = 8

var (
	rootInfo    = []byte("WhisperRatchet")
	messageInfo = []byte("WhisperMessageKeys")
)

// ErrOpen is returned by Open for every failure: a wrong tag, a ciphertext
// that is not a whole number of blocks, bad padding. One error for all, so
// that nothing tells which check failed.
var ErrOpen = errors.New("signalsuite: message authentication failed")

// RootStep returns the next root key and a new chain key from the root key
// rk and a DH output.
func RootStep(rk *[KeySize]byte, dh []byte) (root, chain [KeySize]byte) {
	var out [2 * KeySize]byte
	var salt kdf.Key
	h := kdf.Get()
	h.SetKey(&salt, rk[:])
	h.HKDF(out[:], &salt, dh, rootInfo)
	kdf.Put(h)
	salt.Clear()
	copy(root[:], out[:KeySize])
	copy(chain[:], out[KeySize:])
	clear(out[:])
	return root, chain
}

// ChainStep returns the message-key seed of chain key ck and the next chain
// key.
func ChainStep(ck *[KeySize]byte) (seed, next [KeySize]byte) {
	var k kdf.Key
	h := kdf.Get()
	h.SetKey(&k, ck[:])
	h.MACByte(&seed, &k, 0x01)
	h.MACByte(&next, &k, 0x02)
	kdf.Put(h)
	k.Clear()
	return seed, next
}

// MessageKeys are the keys of one message. They are secret; Clear wipes them.
type MessageKeys struct {
	CipherKey [32]byte
	MACKey    [32]byte
	IV        [16]byte
}

// Clear wipes the keys (best effort).
func (mk *MessageKeys) Clear() {
	clear(mk.CipherKey[:])
	clear(mk.MACKey[:])
	clear(mk.IV[:])
}

// String redacts the keys under every fmt verb.
func (MessageKeys) String() string { return "signalsuite.MessageKeys{REDACTED}" }

// GoString is String.
func (mk MessageKeys) GoString() string { return mk.String() }

// Format prints String whatever the verb.
func (mk MessageKeys) Format(f fmt.State, _ rune) { fmt.Fprint(f, mk.String()) }

// DeriveMessageKeys expands a message-key seed with the SPQR message key as
// salt; a nil salt means none (the all-zero salt).
func DeriveMessageKeys(seed *[KeySize]byte, salt []byte) *MessageKeys {
	var out [80]byte
	h := kdf.Get()
	if salt == nil {
		h.HKDF(out[:], kdf.ZeroSalt(), seed[:], messageInfo)
	} else {
		var s kdf.Key
		h.SetKey(&s, salt)
		h.HKDF(out[:], &s, seed[:], messageInfo)
		s.Clear()
	}
	kdf.Put(h)
	mk := new(MessageKeys)
	copy(mk.CipherKey[:], out[:32])
	copy(mk.MACKey[:], out[32:64])
	copy(mk.IV[:], out[64:])
	clear(out[:])
	return mk
}

// Tag returns the truncated MAC of body (VersionByte || protobuf) from
// sender to receiver.
func Tag(mk *MessageKeys, sender, receiver *keys.PublicKey, body []byte) [TagSize]byte {
	var k kdf.Key
	var full [kdf.Size]byte
	h := kdf.Get()
	h.SetKey(&k, mk.MACKey[:])
	h.MAC(&full, &k, sender.Encode(), receiver.Encode(), body)
	kdf.Put(h)
	k.Clear()
	var tag [TagSize]byte
	copy(tag[:], full[:])
	return tag
}

// Encrypt returns AES-256-CBC of plaintext with PKCS#7 padding (always at
// least one byte of padding, so a 16-byte plaintext gives 32 bytes).
func Encrypt(mk *MessageKeys, plaintext []byte) []byte {
	return EncryptCBC(&mk.CipherKey, &mk.IV, plaintext)
}

// EncryptCBC is Encrypt with the key and IV given apart, for Sender Keys,
// whose message keys have no MAC key.
func EncryptCBC(key *[32]byte, iv *[16]byte, plaintext []byte) []byte {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("signalsuite: AES-256 refused a 32-byte key")
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	out := make([]byte, len(plaintext)+pad)
	copy(out, plaintext)
	for i := len(plaintext); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(out, out)
	return out
}

// Open checks mac, the tag of body from sender to receiver, in constant
// time, and only then decrypts ciphertext (the ciphertext field inside
// body) and strips its padding. Every failure is ErrOpen, and no plaintext
// is returned with it.
func Open(mk *MessageKeys, sender, receiver *keys.PublicKey, body, mac, ciphertext []byte) ([]byte, error) {
	want := Tag(mk, sender, receiver, body)
	if len(mac) != TagSize || subtle.ConstantTimeCompare(want[:], mac) != 1 {
		return nil, ErrOpen
	}
	return DecryptCBC(&mk.CipherKey, &mk.IV, ciphertext)
}

// DecryptCBC decrypts an AES-256-CBC ciphertext and strips its PKCS#7
// padding, with no MAC: the caller has authenticated the ciphertext
// already (Open by its tag, Sender Keys by the sender's signature). Every
// failure is ErrOpen, and no plaintext is returned with it.
func DecryptCBC(key *[32]byte, iv *[16]byte, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, ErrOpen
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("signalsuite: AES-256 refused a 32-byte key")
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(out, ciphertext)
	// The ciphertext is authenticated already, so the padding is the
	// sender's own and checking it leaks nothing to an attacker; it is
	// still checked in constant time, out of habit.
	pad := int(out[len(out)-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, pad)
		good &= subtle.ConstantTimeSelect(inPad, subtle.ConstantTimeByteEq(out[len(out)-i], byte(pad)), 1)
	}
	if good != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return out[:len(out)-pad], nil
}
