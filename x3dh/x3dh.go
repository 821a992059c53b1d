package x3dh

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/internal/curve"
	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/internal/kdf"
	"github.com/ratchetkit/ratchetkit/keys"
)

const (
	// DefaultInfo is the HKDF info string of profile v1, used when a Config
	// sets none.
	DefaultInfo = "ratchetkit_X3DH_X25519_SHA-256_v1"
	// SharedKeySize is the length of the shared secret SK.
	SharedKeySize = 32
	// ADSize is the length of the associated data AD = Encode(IK_A) ||
	// Encode(IK_B).
	ADSize = 2 * keys.EncodedPublicKeySize
)

var (
	// ErrInvalidSignature is returned when a bundle's signed-prekey signature
	// does not verify under its identity key (a signature of the wrong
	// length included). It is keys.ErrInvalidSignature, so either name
	// matches with errors.Is.
	ErrInvalidSignature = keys.ErrInvalidSignature
	// ErrSmallOrder is returned for a peer key of small order, which would
	// contribute nothing to the shared secret, and for an all-zero
	// Diffie-Hellman output. It is keys.ErrSmallOrder.
	ErrSmallOrder = keys.ErrSmallOrder
	// ErrMalformed is returned for a bundle or header that does not parse or
	// cannot be encoded: wrong length, unknown version or flags, a key that
	// does not decode (then keys.ErrInvalidPublicKey is wrapped too), or a
	// required key missing.
	ErrMalformed = errors.New("x3dh: malformed bundle or header")
	// ErrPreKeyMismatch is returned by Respond when the prekeys it is given
	// are not the ones the header names: a different signed-prekey id, a
	// one-time prekey with another id, or a one-time prekey given or missing
	// against the header's flag. It means the caller looked up the wrong
	// keys; the header's ids are what the initiator used.
	ErrPreKeyMismatch = errors.New("x3dh: prekey does not match the header")
)

// Config holds the options of Initiate and Respond. A nil *Config and the
// zero Config use the profile's defaults.
type Config struct {
	// Info is the HKDF info string that binds SK to an application and
	// protocol version. Empty means DefaultInfo. Both parties must use the
	// same value.
	Info []byte

	// keySource, when set through internal/hazmat by ratchetkit's own
	// known-answer tests and conformance driver, supplies the ephemeral key.
	keySource hazmat.KeySource
}

func init() {
	hazmat.SetX3DHKeySource = func(cfg any, src hazmat.KeySource) {
		cfg.(*Config).keySource = src
	}
}

var defaultInfo = []byte(DefaultInfo)

func (c *Config) info() []byte {
	if c == nil || len(c.Info) == 0 {
		return defaultInfo
	}
	return c.Info
}

// Initiation is the initiator's result: the shared secret and associated
// data that start the Double Ratchet, and the header that every prekey
// message must carry until the responder answers.
type Initiation struct {
	// SK is the 32-byte shared secret. It is secret; Clear wipes it.
	SK [SharedKeySize]byte
	// AD is Encode(IK_A) || Encode(IK_B), to be authenticated with every
	// message of the session.
	AD [ADSize]byte
	// Header names the keys the responder needs.
	Header Header
}

// Clear wipes SK (best effort: copies the caller or the runtime made are
// out of reach).
func (in *Initiation) Clear() { clear(in.SK[:]) }

// String describes the initiation with SK redacted. Printing never shows SK,
// with any verb, whether in a value or through a pointer.
func (in Initiation) String() string {
	return fmt.Sprintf("x3dh.Initiation{SK: REDACTED, AD: %x, spk_id: %d, opk: %t, opk_id: %d}",
		in.AD[:], in.Header.SignedPreKeyID, in.Header.HasOneTimePreKey, in.Header.OneTimePreKeyID)
}

// GoString is String.
func (in Initiation) GoString() string { return in.String() }

// Format prints String whatever the verb.
func (in Initiation) Format(f fmt.State, _ rune) { fmt.Fprint(f, in.String()) }

// Response is the responder's result: the same SK and AD as the initiator's.
type Response struct {
	// SK is the 32-byte shared secret. It is secret; Clear wipes it.
	SK [SharedKeySize]byte
	// AD is Encode(IK_A) || Encode(IK_B).
	AD [ADSize]byte
}

// Clear wipes SK (best effort).
func (r *Response) Clear() { clear(r.SK[:]) }

// String describes the response with SK redacted, under every verb.
func (r Response) String() string {
	return fmt.Sprintf("x3dh.Response{SK: REDACTED, AD: %x}", r.AD[:])
}

// GoString is String.
func (r Response) GoString() string { return r.String() }

// Format prints String whatever the verb.
func (r Response) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// ikmSize is the longest HKDF input: F = 0xFF*32 and four DH outputs.
const ikmSize = 32 + 4*curve.Size

// secrets holds every secret intermediate of one agreement, so that a single
// clear wipes them all.
type secrets struct {
	ikm  [ikmSize]byte // 0xFF*32 || DH1 || DH2 || DH3 || DH4
	self [curve.Size]byte
	eph  [curve.Size]byte // EK_A (initiator) or SPK_B (responder)
	opk  [curve.Size]byte
}

func (s *secrets) wipe() {
	clear(s.ikm[:])
	clear(s.self[:])
	clear(s.eph[:])
	clear(s.opk[:])
}

// dh returns DH output i (0 for DH1) inside the KDF input.
func (s *secrets) dh(i int) *[curve.Size]byte {
	return (*[curve.Size]byte)(s.ikm[32+i*curve.Size:])
}

// Initiate runs X3DH as the initiator (Alice) with her identity key ik and
// the responder's bundle b.
//
// It first checks the bundle without computing anything secret (see
// Bundle.Verify): a missing key is ErrMalformed, a small-order key
// ErrSmallOrder, a bad signature ErrInvalidSignature. Only then does it
// generate the ephemeral key EK_A, compute DH1 = DH(IK_A, SPK_B),
// DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B) and, with a one-time prekey,
// DH4 = DH(EK_A, OPK_B), and derive
//
//	SK = HKDF-SHA256(salt = 0x00*32, ikm = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4], info, 32)
//	AD = Encode(IK_A) || Encode(IK_B)
//
// The ephemeral private key and the DH outputs are wiped before it returns
// (best effort). The caller must not reuse a one-time prekey from a bundle:
// the server should hand each out once.
//
// Initiate does not decide whether IK_B really is the intended peer; see
// the package documentation.
func Initiate(ik *keys.IdentityKeyPair, b *Bundle, cfg *Config) (*Initiation, error) {
	if ik == nil {
		return nil, errors.New("x3dh: nil identity key pair")
	}
	if err := b.Verify(); err != nil {
		return nil, err
	}

	var s secrets
	defer s.wipe()

	out := new(Initiation)
	var err error
	if out.Header.EphemeralKey, err = ephemeral(&s.eph, cfg); err != nil {
		return nil, err
	}
	copy(s.self[:], ik.PrivateKey().Bytes())
	var ikB, spkB [32]byte
	copy(ikB[:], b.IdentityKey.Bytes())
	copy(spkB[:], b.SignedPreKey.Bytes())

	for i := range 32 {
		s.ikm[i] = 0xFF
	}
	n := 32 + 3*curve.Size
	// An all-zero output is impossible once Verify has passed, since only
	// small-order keys produce one; the checks stay as the profile's rule.
	if curve.DH(s.dh(0), &s.self, &spkB) != nil ||
		curve.DH(s.dh(1), &s.eph, &ikB) != nil ||
		curve.DH(s.dh(2), &s.eph, &spkB) != nil {
		return nil, fmt.Errorf("x3dh: %w", ErrSmallOrder)
	}
	if b.OneTimePreKey != nil {
		var opkB [32]byte
		copy(opkB[:], b.OneTimePreKey.Bytes())
		if curve.DH(s.dh(3), &s.eph, &opkB) != nil {
			return nil, fmt.Errorf("x3dh: %w", ErrSmallOrder)
		}
		n += curve.Size
		out.Header.HasOneTimePreKey = true
		out.Header.OneTimePreKeyID = b.OneTimePreKeyID
	}
	derive(&out.SK, s.ikm[:n], cfg.info())

	ikA := ik.PublicKey()
	ad := ikA.AppendEncode(out.AD[:0])
	b.IdentityKey.AppendEncode(ad)
	out.Header.IdentityKey = ikA
	out.Header.SignedPreKeyID = b.SignedPreKeyID
	return out, nil
}

// ephemeral sets priv to a fresh ephemeral private key and returns its
// public key. The key comes from crypto/rand unless a hazmat key source is
// set; that source keeps its own copy of the key, which is the tool's to
// wipe.
func ephemeral(priv *[curve.Size]byte, cfg *Config) (*keys.PublicKey, error) {
	if cfg != nil && cfg.keySource != nil {
		k, err := cfg.keySource()
		if err != nil {
			return nil, fmt.Errorf("x3dh: ephemeral key: %w", err)
		}
		copy(priv[:], k.Bytes())
		return k.PublicKey(), nil
	}
	// crypto/rand.Read never returns an error; it crashes the program
	// rather than hand out predictable bytes.
	rand.Read(priv[:])
	var pub [curve.Size]byte
	curve.PublicKey(&pub, priv)
	return keys.NewPublicKey(pub[:])
}

// derive sets sk to HKDF-SHA256 with the all-zero salt over ikm and info.
func derive(sk *[SharedKeySize]byte, ikm, info []byte) {
	h := kdf.Get()
	h.HKDF(sk[:], kdf.ZeroSalt(), ikm, info)
	kdf.Put(h)
}

// Respond runs X3DH as the responder (Bob): ik is his identity key, spk and
// opk the prekeys that h names (opk nil when h has none), h the header of
// the initiator's first message. It returns the same SK and AD as the
// initiator's Initiate.
//
// It checks that spk and opk carry the ids h names and that a one-time
// prekey is given exactly when h has one (else ErrPreKeyMismatch), and that
// IK_A and EK_A are not of small order (else ErrSmallOrder). It cannot tell
// a prekey whose id matches but whose key is not the one the initiator
// used: X3DH has no key confirmation, and SK then simply differs, so the
// first message fails to decrypt. Decrypting that message is the check;
// delete a one-time prekey only after it succeeds.
//
// The DH outputs are wiped before Respond returns (best effort). Respond
// does not check that IK_A is the identity the caller expects; see the
// package documentation.
func Respond(ik *keys.IdentityKeyPair, spk *keys.SignedPreKey, opk *keys.OneTimePreKey, h *Header, cfg *Config) (*Response, error) {
	switch {
	case ik == nil:
		return nil, errors.New("x3dh: nil identity key pair")
	case spk == nil:
		return nil, errors.New("x3dh: nil signed prekey")
	case h == nil || h.IdentityKey == nil || h.EphemeralKey == nil:
		return nil, fmt.Errorf("%w: header lacks a key", ErrMalformed)
	case spk.ID() != h.SignedPreKeyID:
		return nil, fmt.Errorf("%w: signed prekey %d given, header names %d", ErrPreKeyMismatch, spk.ID(), h.SignedPreKeyID)
	case opk == nil && h.HasOneTimePreKey:
		return nil, fmt.Errorf("%w: header names one-time prekey %d, none given", ErrPreKeyMismatch, h.OneTimePreKeyID)
	case opk != nil && !h.HasOneTimePreKey:
		return nil, fmt.Errorf("%w: one-time prekey %d given, header names none", ErrPreKeyMismatch, opk.ID())
	case opk != nil && opk.ID() != h.OneTimePreKeyID:
		return nil, fmt.Errorf("%w: one-time prekey %d given, header names %d", ErrPreKeyMismatch, opk.ID(), h.OneTimePreKeyID)
	}
	if err := checkOrder(h.IdentityKey, "peer identity key"); err != nil {
		return nil, err
	}
	if err := checkOrder(h.EphemeralKey, "peer ephemeral key"); err != nil {
		return nil, err
	}

	var s secrets
	defer s.wipe()

	copy(s.self[:], ik.PrivateKey().Bytes())
	copy(s.eph[:], spk.PrivateKey().Bytes())
	var ikA, ekA [32]byte
	copy(ikA[:], h.IdentityKey.Bytes())
	copy(ekA[:], h.EphemeralKey.Bytes())
	for i := range 32 {
		s.ikm[i] = 0xFF
	}
	n := 32 + 3*curve.Size
	if curve.DH(s.dh(0), &s.eph, &ikA) != nil ||
		curve.DH(s.dh(1), &s.self, &ekA) != nil ||
		curve.DH(s.dh(2), &s.eph, &ekA) != nil {
		return nil, fmt.Errorf("x3dh: %w", ErrSmallOrder)
	}
	if opk != nil {
		copy(s.opk[:], opk.PrivateKey().Bytes())
		if curve.DH(s.dh(3), &s.opk, &ekA) != nil {
			return nil, fmt.Errorf("x3dh: %w", ErrSmallOrder)
		}
		n += curve.Size
	}
	out := new(Response)
	derive(&out.SK, s.ikm[:n], cfg.info())
	ad := h.IdentityKey.AppendEncode(out.AD[:0])
	ik.PublicKey().AppendEncode(ad)
	return out, nil
}
