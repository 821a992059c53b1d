package aead

// The profile's HKDF info strings, declared here rather than taken from the
// package so that a change to either side fails the tests.
const (
	infoAES256GCM        = "ratchetkit_MessageKeys_AES-256-GCM_v1"
	infoChaCha20Poly1305 = "ratchetkit_MessageKeys_ChaCha20-Poly1305_v1"
)
