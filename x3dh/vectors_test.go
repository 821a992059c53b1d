package x3dh_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/internal/testutil"
	"github.com/ratchetkit/ratchetkit/internal/xeddsa"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

var update = flag.Bool("update", false, "regenerate ../testdata/x3dh/vectors.json")

const vectorsPath = "../testdata/x3dh/vectors.json"

// Wire constants, declared here rather than imported so that a change in
// the package cannot silently change what the vectors expect.
const (
	defaultInfo = "ratchetkit_X3DH_X25519_SHA-256_v1"
	keyTypeDJB  = 0x05
)

type hexBytes = testutil.HexOrNull

type vectorFile struct {
	Title       string            `json:"title"`
	Description []string          `json:"description"`
	Conventions map[string]string `json:"conventions"`
	Errors      map[string]string `json:"errors"`
	DefaultInfo hexBytes          `json:"default_info"`
	Valid       []validCase       `json:"valid"`
	Invalid     []invalidCase     `json:"invalid"`
}

type aliceKeys struct {
	IKPriv hexBytes `json:"ik_priv"`
	IKPub  hexBytes `json:"ik_pub,omitempty"`
	EKPriv hexBytes `json:"ek_priv,omitempty"`
	EKPub  hexBytes `json:"ek_pub,omitempty"`
}

type bobKeys struct {
	IKPriv  hexBytes `json:"ik_priv"`
	IKPub   hexBytes `json:"ik_pub,omitempty"`
	SPKID   uint32   `json:"spk_id"`
	SPKPriv hexBytes `json:"spk_priv"`
	SPKPub  hexBytes `json:"spk_pub,omitempty"`
	OPKID   *uint32  `json:"opk_id"`
	OPKPriv hexBytes `json:"opk_priv"`
	OPKPub  hexBytes `json:"opk_pub,omitempty"`
}

type signature struct {
	Style string   `json:"style"`
	Z     hexBytes `json:"z"`
	Msg   hexBytes `json:"msg"`
	Sig   hexBytes `json:"sig"`
}

type validCase struct {
	Name    string    `json:"name"`
	Comment string    `json:"comment"`
	Info    hexBytes  `json:"info"`
	Alice   aliceKeys `json:"alice"`
	Bob     bobKeys   `json:"bob"`
	SPKSig  signature `json:"spk_sig"`
	DH1     hexBytes  `json:"dh1"`
	DH2     hexBytes  `json:"dh2"`
	DH3     hexBytes  `json:"dh3"`
	DH4     hexBytes  `json:"dh4"`
	KDFSalt hexBytes  `json:"kdf_salt"`
	KDFIKM  hexBytes  `json:"kdf_ikm"`
	SK      hexBytes  `json:"sk"`
	AD      hexBytes  `json:"ad"`
	Bundle  hexBytes  `json:"bundle"`
	Header  hexBytes  `json:"header"`
}

// bundleFields is a bundle as the conformance driver takes it: each field
// separately, keys in the 33-byte encoded form (possibly invalid).
type bundleFields struct {
	IK     hexBytes `json:"ik"`
	SPKID  uint32   `json:"spk_id"`
	SPK    hexBytes `json:"spk"`
	SPKSig hexBytes `json:"spk_sig"`
	OPKID  *uint32  `json:"opk_id"`
	OPK    hexBytes `json:"opk"`
}

type headerFields struct {
	IK    hexBytes `json:"ik"`
	EK    hexBytes `json:"ek"`
	SPKID uint32   `json:"spk_id"`
	OPKID *uint32  `json:"opk_id"`
}

type invalidCase struct {
	Name    string `json:"name"`
	Comment string `json:"comment"`
	// Op is initiate, respond, parse_bundle or parse_header.
	Op     string        `json:"op"`
	Info   hexBytes      `json:"info,omitempty"`
	Alice  *aliceKeys    `json:"alice,omitempty"`
	Bundle *bundleFields `json:"bundle,omitempty"`
	Bob    *bobKeys      `json:"bob,omitempty"`
	Header *headerFields `json:"header,omitempty"`
	// Bytes is a pointer so that an empty input is written as "".
	Bytes *hexBytes `json:"bytes,omitempty"`
	// Error is the expected error kind, or null when the operation succeeds
	// but must not agree with the initiator (InitiatorSK).
	Error       *string  `json:"error"`
	Reason      string   `json:"reason,omitempty"`
	SK          hexBytes `json:"sk,omitempty"`
	InitiatorSK hexBytes `json:"initiator_sk,omitempty"`
}

// ---------------------------------------------------------------------------
// Generation.

// vkey derives a vector's private key from its case and role; the JSON
// spells every key out, so nothing needs to reproduce this.
func vkey(name, role string) []byte {
	s := sha256.Sum256([]byte("ratchetkit x3dh vector " + name + " " + role))
	return s[:]
}

func vz(name string) *[64]byte {
	z := sha512.Sum512([]byte("ratchetkit x3dh vector z " + name))
	return &z
}

func pubOf(priv []byte) []byte {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return append([]byte{keyTypeDJB}, k.PublicKey().Bytes()...)
}

// refDH is X25519 from crypto/ecdh, independent of internal/curve. It
// returns nil for an all-zero output.
func refDH(priv, encPub []byte) []byte {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	p, err := ecdh.X25519().NewPublicKey(encPub[1:])
	if err != nil {
		panic(err)
	}
	s, err := k.ECDH(p)
	if err != nil {
		return nil
	}
	return s
}

func refSK(ikm, info []byte) []byte {
	sk, err := hkdf.Key(sha256.New, ikm, make([]byte, 32), string(info), 32)
	if err != nil {
		panic(err)
	}
	return sk
}

func sign(style string, ikPriv, msg []byte, z *[64]byte) []byte {
	k := (*[32]byte)(ikPriv)
	switch style {
	case "spec":
		s := xeddsa.NewPrivateKey(k).Sign(msg, z)
		return s[:]
	case "libsignal":
		s := xeddsa.SignLibsignalStyle(k, msg, z)
		return s[:]
	}
	panic("unknown style " + style)
}

// edwardsSignBit reports the sign bit of clamp(k)·B, which decides where a
// libsignal-style signature puts its top bit.
func edwardsSignBit(k []byte) byte {
	s := xeddsa.SignLibsignalStyle((*[32]byte)(k), nil, new([64]byte))
	return s[63] >> 7
}

func u32(v uint32) *uint32 { return &v }

type validSpec struct {
	name, comment string
	info          []byte
	opk           bool
	style         string
	spkID, opkID  uint32
	// signBit, if 0 or 1, picks Bob's identity key so that its Edwards sign
	// bit has that value (libsignal signatures then carry it in sig[63]).
	signBit int
	// unclamped sets the clamping bits of every private key, which X25519
	// must ignore.
	unclamped bool
}

func makeValid(sp validSpec) validCase {
	key := func(role string) []byte {
		k := vkey(sp.name, role)
		if sp.unclamped {
			k[0] |= 7
			k[31] |= 0x80
			k[31] &^= 0x40
		}
		return k
	}
	bobIK := key("bob ik")
	for i := 0; sp.signBit >= 0 && int(edwardsSignBit(bobIK)) != sp.signBit; i++ {
		bobIK = key(fmt.Sprintf("bob ik %d", i))
	}
	c := validCase{Name: sp.name, Comment: sp.comment, Info: sp.info}
	c.Alice = aliceKeys{IKPriv: key("alice ik"), EKPriv: key("alice ek")}
	c.Alice.IKPub, c.Alice.EKPub = pubOf(c.Alice.IKPriv), pubOf(c.Alice.EKPriv)
	c.Bob = bobKeys{IKPriv: bobIK, SPKID: sp.spkID, SPKPriv: key("bob spk")}
	c.Bob.IKPub, c.Bob.SPKPub = pubOf(c.Bob.IKPriv), pubOf(c.Bob.SPKPriv)
	if sp.opk {
		c.Bob.OPKID = u32(sp.opkID)
		c.Bob.OPKPriv = key("bob opk")
		c.Bob.OPKPub = pubOf(c.Bob.OPKPriv)
	}
	z := vz(sp.name)
	c.SPKSig = signature{Style: sp.style, Z: z[:], Msg: c.Bob.SPKPub, Sig: sign(sp.style, c.Bob.IKPriv, c.Bob.SPKPub, z)}

	c.DH1 = refDH(c.Alice.IKPriv, c.Bob.SPKPub)
	c.DH2 = refDH(c.Alice.EKPriv, c.Bob.IKPub)
	c.DH3 = refDH(c.Alice.EKPriv, c.Bob.SPKPub)
	ikm := append(bytes.Repeat([]byte{0xff}, 32), c.DH1...)
	ikm = append(append(ikm, c.DH2...), c.DH3...)
	if sp.opk {
		c.DH4 = refDH(c.Alice.EKPriv, c.Bob.OPKPub)
		ikm = append(ikm, c.DH4...)
	}
	c.KDFSalt = make([]byte, 32)
	c.KDFIKM = ikm
	c.SK = refSK(ikm, sp.info)
	c.AD = append(append([]byte{}, c.Alice.IKPub...), c.Bob.IKPub...)

	// The encodings are written out by hand here, independently of
	// Bundle.AppendBinary and Header.AppendBinary.
	var flags byte
	if sp.opk {
		flags = 1
	}
	bd := append([]byte{0x01, flags}, c.Bob.IKPub...)
	bd = binary.BigEndian.AppendUint32(bd, sp.spkID)
	bd = append(append(bd, c.Bob.SPKPub...), c.SPKSig.Sig...)
	hd := append(append([]byte{flags}, c.Alice.IKPub...), c.Alice.EKPub...)
	hd = binary.BigEndian.AppendUint32(hd, sp.spkID)
	if sp.opk {
		bd = binary.BigEndian.AppendUint32(bd, sp.opkID)
		bd = append(bd, c.Bob.OPKPub...)
		hd = binary.BigEndian.AppendUint32(hd, sp.opkID)
	}
	c.Bundle, c.Header = bd, hd
	return c
}

// Small-order u-coordinates, canonical, little-endian: the test's own copy.
var smallOrderU = []struct {
	name string
	u    string
}{
	{"u0", "0000000000000000000000000000000000000000000000000000000000000000"},
	{"u1", "0100000000000000000000000000000000000000000000000000000000000000"},
	{"order8a", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"},
	{"order8b", "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"},
	{"p_minus_1", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
}

func enc(uHex string) hexBytes {
	u, err := hex.DecodeString(uHex)
	if err != nil {
		panic(err)
	}
	return append(hexBytes{keyTypeDJB}, u...)
}

// badEncodings are 33-byte (or wrongly sized) keys that must not decode.
func badEncodings(valid []byte) []struct {
	name string
	b    hexBytes
} {
	bit255 := append(hexBytes{}, valid...)
	bit255[32] |= 0x80
	wrongType := append(hexBytes{}, valid...)
	wrongType[0] = 0x06
	return []struct {
		name string
		b    hexBytes
	}{
		{"u_equals_p", enc("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"u_equals_2p255_minus_1", enc("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"bit255_set", bit255},
		{"type_byte_0x06", wrongType},
		{"raw_32_bytes", append(hexBytes{}, valid[1:]...)},
		{"34_bytes", append(append(hexBytes{}, valid...), 0)},
	}
}

func str(s string) *string { return &s }

// groupOrder is q = 2^252 + 27742317777372353535851937790883648493.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// addOrder returns sig with s replaced by s + q: the same signature in a
// non-canonical form that the specification and libsignal accept and
// profile v1 rejects.
func addOrder(sig []byte) hexBytes {
	out := append(hexBytes{}, sig...)
	le := make([]byte, 32)
	copy(le, sig[32:])
	top := le[31] & 0x80
	le[31] &= 0x7f
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		le[i], le[j] = le[j], le[i]
	}
	s := new(big.Int).SetBytes(le)
	s.Add(s, groupOrder)
	be := s.FillBytes(make([]byte, 32))
	for i := range 32 {
		out[32+i] = be[31-i]
	}
	out[63] |= top
	return out
}

func generateVectors() *vectorFile {
	f := &vectorFile{
		Title: "ratchetkit profile v1: X3DH test vectors",
		Description: []string{
			"Generated by x3dh/vectors_test.go (go test ./x3dh -run TestVectors -update) and checked by the same test by default.",
			"DH outputs, SK and AD were computed with Go's crypto/ecdh and crypto/hkdf, not with ratchetkit's own X25519 and HKDF code.",
			"'valid' cases spell out every key, each DH output, the KDF input and the results; an implementation must reproduce sk, ad, bundle and header from the private keys, info and signature.",
			"'invalid' cases give one operation's inputs and the error kind it must fail with (kinds as in the profile's conformance driver; 'reason' says which check).",
			"testdata/x3dh/check_vectors.py re-derives every case independently (Python cryptography for X25519 and HKDF, XEdDSA on plain integers).",
		},
		Conventions: map[string]string{
			"bytes":        "every byte string is lowercase hex; an absent optional value is null",
			"private_keys": "32 raw bytes as stored, not necessarily clamped; X25519 and XEdDSA clamp them (RFC 7748) before use",
			"public_keys":  "33 bytes, Encode(PK) = 0x05 || u, u the little-endian u-coordinate; decoding rejects any other type byte or length and u >= p = 2^255 - 19 (so bit 255 set)",
			"dh":           "DH(a, B) = X25519(a, u of B); an all-zero output is an error (bad_key)",
			"dh1..dh4":     "dh1 = DH(IK_A, SPK_B), dh2 = DH(EK_A, IK_B), dh3 = DH(EK_A, SPK_B), dh4 = DH(EK_A, OPK_B) only with a one-time prekey (else null); Bob computes the same values as DH(SPK_B, IK_A), DH(IK_B, EK_A), DH(SPK_B, EK_A), DH(OPK_B, EK_A)",
			"kdf":          "sk = HKDF-SHA256(salt = kdf_salt (32 zero bytes), ikm = kdf_ikm, info = info, L = 32), RFC 5869",
			"kdf_ikm":      "0xFF * 32 || dh1 || dh2 || dh3 [|| dh4]",
			"ad":           "Encode(IK_A) || Encode(IK_B), 66 bytes",
			"info":         "the HKDF info; the profile's default is default_info, used when the application sets none",
			"spk_sig":      "XEdDSA signature by IK_B over msg = Encode(SPK_B), with the 64 random bytes z. style 'spec': XEdDSA rev. 1 exactly (a = -k if the Edwards sign of kB is 1; nonce hashes a; sig[63] bit 7 is 0). style 'libsignal': libsignal's signer (no negation, nonce hashes the clamped key, sig[63] bit 7 = Edwards sign bit of kB). Verifiers must accept both",
			"bundle":       "version 0x01 || flags (bit 0: one-time prekey present; bits 1-7 zero) || Encode(IK_B) || u32be(spk_id) || Encode(SPK_B) || spk_sig (64) [|| u32be(opk_id) || Encode(OPK_B)]: exactly 136 or 173 bytes",
			"header":       "flags (bit 0: opk_id present; bits 1-7 zero) || Encode(IK_A) || Encode(EK_A) || u32be(spk_id) [|| u32be(opk_id)]: 71 or 75 bytes; in a prekey message it follows the type byte 0x02 and precedes the ratchet message",
			"check_order":  "initiate: keys decode (bad_key), then no bundle key of small order (bad_key), then the signature (invalid_signature; a wrong length is invalid_signature), and only then the ephemeral key and the DH computations. respond: the prekeys given must carry the ids the header names (prekey_mismatch), then IK_A and EK_A must not be of small order (bad_key)",
			"small_order":  "the canonical u of small order are 0, 1, p - 1 and the two points of order 8 (e0eb7a7c...b800, 5f9c95bc...1157); X25519 maps them to zero under every clamped scalar",
		},
		Errors: map[string]string{
			"invalid_signature": "the bundle's spk_sig does not verify under IK_B (XEdDSA with the profile's strict rules: s < q, key canonical, on the curve, not of small order)",
			"bad_key":           "a key that does not decode, a peer key of small order, or an all-zero DH output",
			"malformed":         "a bundle or header of the wrong length, version or flags (parse_bundle, parse_header); a key inside that does not decode is bad_key",
			"prekey_mismatch":   "respond was given a signed or one-time prekey whose id is not the one the header names, or a one-time prekey against the header's flag",
		},
		DefaultInfo: []byte(defaultInfo),
	}

	longInfo := bytes.Repeat([]byte("0123456789"), 30)
	specs := []validSpec{
		{name: "opk_default_info_spec_sig", comment: "with a one-time prekey, default info, spec-exact signature", info: []byte(defaultInfo), opk: true, style: "spec", spkID: 1, opkID: 100, signBit: -1},
		{name: "no_opk_default_info_spec_sig", comment: "without a one-time prekey (three DH outputs), default info, spec-exact signature", info: []byte(defaultInfo), style: "spec", spkID: 2, signBit: -1},
		{name: "opk_custom_info_libsignal_sig_sign1", comment: "custom info; libsignal-style signature whose top bit (Edwards sign bit) is 1, which a verifier must take into account", info: []byte("MyMessenger X3DH v7"), opk: true, style: "libsignal", spkID: 3, opkID: 7, signBit: 1},
		{name: "no_opk_custom_info_libsignal_sig_sign0", comment: "no one-time prekey, custom info, libsignal-style signature with sign bit 0", info: []byte("MyMessenger X3DH v7"), style: "libsignal", spkID: 4, signBit: 0},
		{name: "opk_default_info_libsignal_sig_sign1", comment: "one-time prekey, default info, libsignal-style signature with sign bit 1", info: []byte(defaultInfo), opk: true, style: "libsignal", spkID: 5, opkID: 5, signBit: 1},
		{name: "no_opk_custom_info_spec_sig", comment: "no one-time prekey, custom info, spec-exact signature", info: []byte("x"), style: "spec", spkID: 6, signBit: -1},
		{name: "extreme_ids", comment: "spk_id 0 and opk_id 2^32 - 1: ids are u32, big-endian", info: []byte(defaultInfo), opk: true, style: "spec", spkID: 0, opkID: 0xffffffff, signBit: -1},
		{name: "long_info", comment: "a 300-byte info string", info: longInfo, opk: true, style: "spec", spkID: 8, opkID: 9, signBit: -1},
		{name: "unclamped_private_keys", comment: "every private key has bits 0-2 and 255 set and bit 254 clear: X25519 and XEdDSA clamp them first", info: []byte(defaultInfo), opk: true, style: "libsignal", spkID: 10, opkID: 11, signBit: -1, unclamped: true},
	}
	for _, sp := range specs {
		f.Valid = append(f.Valid, makeValid(sp))
	}
	f.Invalid = invalidVectors(f.Valid[0], f.Valid[1])
	return f
}

func fieldsOf(c validCase) *bundleFields {
	b := &bundleFields{IK: c.Bob.IKPub, SPKID: c.Bob.SPKID, SPK: c.Bob.SPKPub, SPKSig: c.SPKSig.Sig}
	if c.Bob.OPKID != nil {
		b.OPKID, b.OPK = u32(*c.Bob.OPKID), c.Bob.OPKPub
	}
	return b
}

func headerOf(c validCase) *headerFields {
	h := &headerFields{IK: c.Alice.IKPub, EK: c.Alice.EKPub, SPKID: c.Bob.SPKID}
	if c.Bob.OPKID != nil {
		h.OPKID = u32(*c.Bob.OPKID)
	}
	return h
}

// invalidVectors derives the negative cases from a valid case with a
// one-time prekey (base) and one without (noOPK).
func invalidVectors(base, noOPK validCase) []invalidCase {
	var out []invalidCase
	alice := &aliceKeys{IKPriv: base.Alice.IKPriv, EKPriv: base.Alice.EKPriv}
	z := vz("invalid")

	initiate := func(name, comment, kind, reason string, mut func(b *bundleFields)) {
		b := fieldsOf(base)
		mut(b)
		out = append(out, invalidCase{Name: name, Comment: comment, Op: "initiate", Info: base.Info,
			Alice: alice, Bundle: b, Error: str(kind), Reason: reason})
	}
	flip := func(i int, bit byte) func(b *bundleFields) {
		return func(b *bundleFields) {
			b.SPKSig = append(hexBytes{}, b.SPKSig...)
			b.SPKSig[i] ^= bit
		}
	}
	initiate("sig_flip_R", "spk_sig with bit 0 of byte 0 (in R) flipped", "invalid_signature", "signature", flip(0, 0x01))
	initiate("sig_flip_s", "spk_sig with bit 3 of byte 40 (in s) flipped", "invalid_signature", "signature", flip(40, 0x08))
	initiate("sig_flip_sign_bit", "spk_sig with bit 7 of byte 63 (the sign-bit slot) set: verification then uses -A", "invalid_signature", "signature", flip(63, 0x80))
	initiate("sig_s_plus_q", "s replaced by s + q: accepted by the XEdDSA specification and libsignal, rejected by profile v1 (s must be < q)", "invalid_signature", "s_not_canonical",
		func(b *bundleFields) { b.SPKSig = addOrder(b.SPKSig) })
	initiate("sig_by_other_key", "spk_sig is a valid signature of Encode(SPK_B), but by another identity key", "invalid_signature", "signature",
		func(b *bundleFields) { b.SPKSig = sign("spec", vkey("invalid", "other ik"), base.Bob.SPKPub, z) })
	initiate("sig_over_raw_u", "spk_sig signs the 32-byte u of SPK_B instead of its 33-byte encoding", "invalid_signature", "signature",
		func(b *bundleFields) { b.SPKSig = sign("spec", base.Bob.IKPriv, base.Bob.SPKPub[1:], z) })
	initiate("sig_over_other_spk", "spk_sig is IK_B's signature of a different signed prekey", "invalid_signature", "signature",
		func(b *bundleFields) {
			b.SPKSig = sign("spec", base.Bob.IKPriv, pubOf(vkey("invalid", "other spk")), z)
		})
	initiate("sig_63_bytes", "spk_sig one byte short", "invalid_signature", "signature_length",
		func(b *bundleFields) { b.SPKSig = append(hexBytes{}, b.SPKSig[:63]...) })
	initiate("sig_65_bytes", "spk_sig one byte long", "invalid_signature", "signature_length",
		func(b *bundleFields) { b.SPKSig = append(append(hexBytes{}, b.SPKSig...), 0) })
	initiate("sig_all_zero", "spk_sig of 64 zero bytes", "invalid_signature", "signature",
		func(b *bundleFields) { b.SPKSig = make(hexBytes, 64) })

	for _, so := range smallOrderU {
		k := enc(so.u)
		initiate("small_order_ik_"+so.name, "IK_B of small order: rejected as bad_key before the signature is checked (XEdDSA could never verify under it)", "bad_key", "small_order",
			func(b *bundleFields) { b.IK = k })
		initiate("small_order_spk_"+so.name, "SPK_B of small order with a valid signature by IK_B: bad_key, though the signature verifies", "bad_key", "small_order",
			func(b *bundleFields) { b.SPK = k; b.SPKSig = sign("spec", base.Bob.IKPriv, k, z) })
		initiate("small_order_opk_"+so.name, "OPK_B of small order (the one-time prekey is not signed)", "bad_key", "small_order",
			func(b *bundleFields) { b.OPK = k })
	}
	initiate("small_order_ik_and_bad_sig", "IK_B of small order and a garbage signature: bad_key wins, keys are judged before the signature", "bad_key", "small_order",
		func(b *bundleFields) { b.IK = enc(smallOrderU[2].u); b.SPKSig = make(hexBytes, 64) })
	for _, be := range badEncodings(base.Bob.IKPub) {
		initiate("undecodable_ik_"+be.name, "IK_B does not decode: bad_key, checked before the signature", "bad_key", "key_encoding",
			func(b *bundleFields) { b.IK = be.b })
	}
	for _, be := range badEncodings(base.Bob.SPKPub) {
		initiate("undecodable_spk_"+be.name, "SPK_B does not decode: bad_key, checked before the signature", "bad_key", "key_encoding",
			func(b *bundleFields) { b.SPK = be.b })
	}
	for _, be := range badEncodings(base.Bob.OPKPub)[:3] {
		initiate("undecodable_opk_"+be.name, "OPK_B does not decode", "bad_key", "key_encoding",
			func(b *bundleFields) { b.OPK = be.b })
	}

	// Respond.
	bob := &bobKeys{IKPriv: base.Bob.IKPriv, SPKID: base.Bob.SPKID, SPKPriv: base.Bob.SPKPriv, OPKID: base.Bob.OPKID, OPKPriv: base.Bob.OPKPriv}
	respond := func(name, comment, kind, reason string, mut func(b *bobKeys, h *headerFields)) {
		b, h := *bob, headerOf(base)
		mut(&b, h)
		out = append(out, invalidCase{Name: name, Comment: comment, Op: "respond", Info: base.Info,
			Bob: &b, Header: h, Error: str(kind), Reason: reason})
	}
	for _, so := range smallOrderU {
		k := enc(so.u)
		respond("small_order_peer_ik_"+so.name, "IK_A of small order", "bad_key", "small_order",
			func(_ *bobKeys, h *headerFields) { h.IK = k })
		respond("small_order_peer_ek_"+so.name, "EK_A of small order", "bad_key", "small_order",
			func(_ *bobKeys, h *headerFields) { h.EK = k })
	}
	respond("spk_id_mismatch", "Bob's signed prekey has id spk_id + 1, not the header's spk_id", "prekey_mismatch", "spk_id",
		func(b *bobKeys, _ *headerFields) { b.SPKID++ })
	respond("opk_id_mismatch", "Bob's one-time prekey has id opk_id + 1, not the header's opk_id", "prekey_mismatch", "opk_id",
		func(b *bobKeys, _ *headerFields) { b.OPKID = u32(*b.OPKID + 1) })
	respond("opk_missing", "the header names a one-time prekey, Bob gives none", "prekey_mismatch", "opk_presence",
		func(b *bobKeys, _ *headerFields) { b.OPKID, b.OPKPriv = nil, nil })
	respond("opk_unexpected", "the header names no one-time prekey, Bob gives one", "prekey_mismatch", "opk_presence",
		func(_ *bobKeys, h *headerFields) { h.OPKID = nil })

	// A one-time prekey with the right id but the wrong key: X3DH cannot
	// detect it; SK differs and the first message will not decrypt.
	wrongOPK := vkey("invalid", "wrong opk")
	wb := *bob
	wb.OPKPriv = wrongOPK
	ikm := append(append([]byte{}, base.KDFIKM[:32+3*32]...), refDH(wrongOPK, base.Alice.EKPub)...)
	out = append(out, invalidCase{
		Name:        "opk_key_mismatch_undetectable",
		Comment:     "Bob's one-time prekey has the header's id but is not the key Alice used. X3DH has no key confirmation: respond succeeds with an sk that differs from the initiator's, and the first message then fails to authenticate. The error is null on purpose.",
		Op:          "respond",
		Info:        base.Info,
		Bob:         &wb,
		Header:      headerOf(base),
		SK:          refSK(ikm, base.Info),
		InitiatorSK: base.SK,
	})

	// parse_bundle.
	parse := func(op, name, comment, kind, reason string, b []byte) {
		hb := hexBytes(append([]byte{}, b...))
		out = append(out, invalidCase{Name: name, Comment: comment, Op: op, Bytes: &hb, Error: str(kind), Reason: reason})
	}
	bd, bd0 := []byte(base.Bundle), []byte(noOPK.Bundle)
	with := func(b []byte, i int, v byte) []byte {
		c := append([]byte{}, b...)
		c[i] = v
		return c
	}
	pb := func(name, comment, kind, reason string, b []byte) {
		parse("parse_bundle", "bundle_"+name, comment, kind, reason, b)
	}
	pb("empty", "no bytes", "malformed", "length", []byte{})
	pb("version_only", "one byte", "malformed", "length", bd[:1])
	pb("version_0x00", "unknown version 0x00", "malformed", "version", with(bd, 0, 0x00))
	pb("version_0x02", "unknown version 0x02", "malformed", "version", with(bd, 0, 0x02))
	pb("flags_0x02", "flag bit 1 set", "malformed", "flags", with(bd0, 1, 0x02))
	pb("flags_0x81", "flag bits 0 and 7 set", "malformed", "flags", with(bd, 1, 0x81))
	pb("truncated_no_opk", "135 bytes, no one-time prekey", "malformed", "length", bd0[:len(bd0)-1])
	pb("truncated_opk", "172 bytes with the one-time prekey flag", "malformed", "length", bd[:len(bd)-1])
	pb("trailing_byte_no_opk", "137 bytes: one trailing byte", "malformed", "length", append(append([]byte{}, bd0...), 0))
	pb("trailing_byte_opk", "174 bytes: one trailing byte", "malformed", "length", append(append([]byte{}, bd...), 0))
	pb("flag_set_opk_absent", "flags say a one-time prekey follows, none does (136 bytes)", "malformed", "length", with(bd0, 1, 0x01))
	pb("flag_clear_opk_present", "flags say no one-time prekey, but one follows (173 bytes)", "malformed", "length", with(bd, 1, 0x00))
	pb("ik_non_canonical", "IK_B with u = p", "bad_key", "key_encoding", append(append(append([]byte{}, bd0[:2]...), enc("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")...), bd0[35:]...))
	pb("ik_bit255", "IK_B with bit 255 set", "bad_key", "key_encoding", with(bd0, 34, bd0[34]|0x80))
	pb("spk_type_byte", "SPK_B with type byte 0x06", "bad_key", "key_encoding", with(bd0, 39, 0x06))
	pb("opk_type_byte", "OPK_B with type byte 0x00", "bad_key", "key_encoding", with(bd, 140, 0x00))
	pb("opk_bit255", "OPK_B with bit 255 set", "bad_key", "key_encoding", with(bd, 172, bd[172]|0x80))

	hd, hd0 := []byte(base.Header), []byte(noOPK.Header)
	ph := func(name, comment, kind, reason string, b []byte) {
		parse("parse_header", "header_"+name, comment, kind, reason, b)
	}
	ph("empty", "no bytes", "malformed", "length", []byte{})
	ph("flags_0x02", "flag bit 1 set", "malformed", "flags", with(hd0, 0, 0x02))
	ph("flags_0x81", "flag bits 0 and 7 set", "malformed", "flags", with(hd, 0, 0x81))
	ph("truncated_no_opk", "70 bytes", "malformed", "length", hd0[:70])
	ph("truncated_opk", "74 bytes with the opk flag", "malformed", "length", hd[:74])
	ph("ik_type_byte", "IK_A with type byte 0x04", "bad_key", "key_encoding", with(hd0, 1, 0x04))
	ph("ek_non_canonical", "EK_A with bit 255 set", "bad_key", "key_encoding", with(hd0, 66, hd0[66]|0x80))
	return out
}

// ---------------------------------------------------------------------------
// Checking.

func marshalVectors(f *vectorFile) []byte {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func TestVectors(t *testing.T) {
	gen := marshalVectors(generateVectors())
	if *update {
		if err := os.MkdirAll(filepath.Dir(vectorsPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, gen, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, gen) {
		t.Errorf("%s differs from what the generator makes; run go test -run TestVectors -update and review the diff", vectorsPath)
	}
	var f vectorFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if string(f.DefaultInfo) != defaultInfo || x3dh.DefaultInfo != defaultInfo {
		t.Fatalf("default info %q / %q, want %q", f.DefaultInfo, x3dh.DefaultInfo, defaultInfo)
	}
	if len(f.Valid) < 8 || len(f.Invalid) < 60 {
		t.Fatalf("only %d valid and %d invalid vectors", len(f.Valid), len(f.Invalid))
	}
	for _, c := range f.Valid {
		t.Run("valid/"+c.Name, func(t *testing.T) { checkValid(t, c) })
	}
	for _, c := range f.Invalid {
		t.Run("invalid/"+c.Name, func(t *testing.T) { checkInvalid(t, c) })
	}
}

func mustKey(t *testing.T, b []byte) *keys.PublicKey {
	t.Helper()
	k, err := keys.DecodePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPriv(t *testing.T, b []byte) *keys.PrivateKey {
	t.Helper()
	k, err := keys.NewPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustIK(t *testing.T, b []byte) *keys.IdentityKeyPair {
	t.Helper()
	k, err := keys.NewIdentityKeyPair(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func cfgWith(info []byte, ek *keys.PrivateKey) *x3dh.Config {
	cfg := &x3dh.Config{Info: info}
	if ek != nil {
		hazmat.SetX3DHKeySource(cfg, hazmat.Keys(ek))
	}
	return cfg
}

func eq(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

func checkValid(t *testing.T, c validCase) {
	// The file is self-consistent by the standard library's reckoning.
	eq(t, "alice ik_pub", pubOf(c.Alice.IKPriv), c.Alice.IKPub)
	eq(t, "alice ek_pub", pubOf(c.Alice.EKPriv), c.Alice.EKPub)
	eq(t, "bob ik_pub", pubOf(c.Bob.IKPriv), c.Bob.IKPub)
	eq(t, "bob spk_pub", pubOf(c.Bob.SPKPriv), c.Bob.SPKPub)
	eq(t, "dh1 (Bob's side)", refDH(c.Bob.SPKPriv, c.Alice.IKPub), c.DH1)
	eq(t, "dh2 (Bob's side)", refDH(c.Bob.IKPriv, c.Alice.EKPub), c.DH2)
	eq(t, "dh3 (Bob's side)", refDH(c.Bob.SPKPriv, c.Alice.EKPub), c.DH3)
	ikm := append(bytes.Repeat([]byte{0xff}, 32), c.DH1...)
	ikm = append(append(ikm, c.DH2...), c.DH3...)
	if c.Bob.OPKID != nil {
		eq(t, "bob opk_pub", pubOf(c.Bob.OPKPriv), c.Bob.OPKPub)
		eq(t, "dh4 (Bob's side)", refDH(c.Bob.OPKPriv, c.Alice.EKPub), c.DH4)
		ikm = append(ikm, c.DH4...)
	} else if c.DH4 != nil || c.Bob.OPKPriv != nil || c.Bob.OPKPub != nil {
		t.Error("dh4 or one-time prekey without opk_id")
	}
	eq(t, "kdf_ikm", c.KDFIKM, ikm)
	eq(t, "kdf_salt", c.KDFSalt, make([]byte, 32))
	eq(t, "sk (crypto/hkdf)", refSK(c.KDFIKM, c.Info), c.SK)
	eq(t, "ad", append(append([]byte{}, c.Alice.IKPub...), c.Bob.IKPub...), c.AD)
	eq(t, "spk_sig msg", c.SPKSig.Msg, c.Bob.SPKPub)
	eq(t, "spk_sig (re-signed with z)", sign(c.SPKSig.Style, c.Bob.IKPriv, c.SPKSig.Msg, (*[64]byte)(c.SPKSig.Z)), c.SPKSig.Sig)

	// Alice: the bundle bytes parse to the listed keys and re-encode.
	b, err := x3dh.ParseBundle(c.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "bundle ik", b.IdentityKey.Encode(), c.Bob.IKPub)
	eq(t, "bundle spk", b.SignedPreKey.Encode(), c.Bob.SPKPub)
	eq(t, "bundle sig", b.SignedPreKeySignature, c.SPKSig.Sig)
	if b.SignedPreKeyID != c.Bob.SPKID {
		t.Errorf("bundle spk_id %d, want %d", b.SignedPreKeyID, c.Bob.SPKID)
	}
	if c.Bob.OPKID != nil {
		if b.OneTimePreKey == nil || b.OneTimePreKeyID != *c.Bob.OPKID {
			t.Fatalf("bundle one-time prekey %v id %d, want id %d", b.OneTimePreKey, b.OneTimePreKeyID, *c.Bob.OPKID)
		}
		eq(t, "bundle opk", b.OneTimePreKey.Encode(), c.Bob.OPKPub)
	} else if b.OneTimePreKey != nil || b.OneTimePreKeyID != 0 {
		t.Error("bundle has a one-time prekey")
	}
	re, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "bundle re-encoded", re, c.Bundle)

	in, err := x3dh.Initiate(mustIK(t, c.Alice.IKPriv), b, cfgWith(c.Info, mustPriv(t, c.Alice.EKPriv)))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "initiate sk", in.SK[:], c.SK)
	eq(t, "initiate ad", in.AD[:], c.AD)
	hdr, err := in.Header.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "initiate header", hdr, c.Header)

	// Bob: the header bytes, followed by some message bytes.
	msg := append(append([]byte{}, c.Header...), "ratchet message"...)
	h, rest, err := x3dh.ParseHeader(msg)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "header rest", rest, []byte("ratchet message"))
	if !h.Equal(&in.Header) {
		t.Error("parsed header differs from Alice's")
	}
	spk, err := keys.NewSignedPreKey(c.Bob.SPKID, mustPriv(t, c.Bob.SPKPriv), c.SPKSig.Sig, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var opk *keys.OneTimePreKey
	if c.Bob.OPKID != nil {
		opk = keys.NewOneTimePreKey(*c.Bob.OPKID, mustPriv(t, c.Bob.OPKPriv))
	}
	r, err := x3dh.Respond(mustIK(t, c.Bob.IKPriv), spk, opk, h, &x3dh.Config{Info: c.Info})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "respond sk", r.SK[:], c.SK)
	eq(t, "respond ad", r.AD[:], c.AD)

	// With the default info, a nil Config gives the same result.
	if string(c.Info) == defaultInfo {
		r, err := x3dh.Respond(mustIK(t, c.Bob.IKPriv), spk, opk, h, nil)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "respond sk, nil config", r.SK[:], c.SK)
	}
}

// kindErrors maps the vectors' error kinds to the errors that must match.
func wantErrors(c invalidCase) []error {
	switch *c.Error {
	case "invalid_signature":
		return []error{x3dh.ErrInvalidSignature}
	case "prekey_mismatch":
		return []error{x3dh.ErrPreKeyMismatch}
	case "malformed":
		return []error{x3dh.ErrMalformed}
	case "bad_key":
		switch c.Reason {
		case "small_order":
			return []error{x3dh.ErrSmallOrder}
		case "key_encoding":
			if c.Op == "parse_bundle" || c.Op == "parse_header" {
				return []error{x3dh.ErrMalformed, keys.ErrInvalidPublicKey}
			}
			return []error{keys.ErrInvalidPublicKey}
		}
	}
	panic("unknown error kind " + *c.Error + "/" + c.Reason)
}

var allErrors = []error{x3dh.ErrInvalidSignature, x3dh.ErrSmallOrder, x3dh.ErrMalformed, x3dh.ErrPreKeyMismatch, keys.ErrInvalidPublicKey}

// checkErr asserts that err matches exactly the errors in want among all
// the sentinels.
func checkErr(t *testing.T, err error, want []error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, e := range allErrors {
		w := false
		for _, x := range want {
			w = w || x == e
		}
		if errors.Is(err, e) != w {
			t.Errorf("error %q: errors.Is(%q) = %t, want %t", err, e, !w, w)
		}
	}
}

func checkInvalid(t *testing.T, c invalidCase) {
	switch c.Op {
	case "initiate":
		called := false
		cfg := &x3dh.Config{Info: c.Info}
		ek := mustPriv(t, c.Alice.EKPriv)
		hazmat.SetX3DHKeySource(cfg, func() (*keys.PrivateKey, error) { called = true; return ek, nil })
		err := initiateFields(mustIK(t, c.Alice.IKPriv), c.Bundle, cfg)
		checkErr(t, err, wantErrors(c))
		if called {
			t.Error("the ephemeral key was drawn before the bundle was rejected")
		}
	case "respond":
		spk, err := keys.NewSignedPreKey(c.Bob.SPKID, mustPriv(t, c.Bob.SPKPriv), make([]byte, 64), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var opk *keys.OneTimePreKey
		if c.Bob.OPKID != nil {
			opk = keys.NewOneTimePreKey(*c.Bob.OPKID, mustPriv(t, c.Bob.OPKPriv))
		}
		h := &x3dh.Header{IdentityKey: mustKey(t, c.Header.IK), EphemeralKey: mustKey(t, c.Header.EK), SignedPreKeyID: c.Header.SPKID}
		if c.Header.OPKID != nil {
			h.HasOneTimePreKey, h.OneTimePreKeyID = true, *c.Header.OPKID
		}
		r, err := x3dh.Respond(mustIK(t, c.Bob.IKPriv), spk, opk, h, &x3dh.Config{Info: c.Info})
		if c.Error == nil {
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "sk", r.SK[:], c.SK)
			if bytes.Equal(r.SK[:], c.InitiatorSK) {
				t.Error("mismatched one-time prekey gave the initiator's SK")
			}
			return
		}
		checkErr(t, err, wantErrors(c))
		if r != nil {
			t.Error("result returned with an error")
		}
	case "parse_bundle":
		b, err := x3dh.ParseBundle(*c.Bytes)
		checkErr(t, err, wantErrors(c))
		if b != nil {
			t.Error("bundle returned with an error")
		}
	case "parse_header":
		h, rest, err := x3dh.ParseHeader(*c.Bytes)
		checkErr(t, err, wantErrors(c))
		if h != nil || rest != nil {
			t.Error("header returned with an error")
		}
	default:
		t.Fatalf("unknown op %q", c.Op)
	}
}

// initiateFields does what the conformance driver does with a JSON bundle:
// decode each key (a failure is bad_key), then Initiate.
func initiateFields(ik *keys.IdentityKeyPair, f *bundleFields, cfg *x3dh.Config) error {
	b := &x3dh.Bundle{SignedPreKeyID: f.SPKID, SignedPreKeySignature: f.SPKSig}
	var err error
	if b.IdentityKey, err = keys.DecodePublicKey(f.IK); err != nil {
		return err
	}
	if b.SignedPreKey, err = keys.DecodePublicKey(f.SPK); err != nil {
		return err
	}
	if f.OPKID != nil {
		b.OneTimePreKeyID = *f.OPKID
		if b.OneTimePreKey, err = keys.DecodePublicKey(f.OPK); err != nil {
			return err
		}
	}
	in, err := x3dh.Initiate(ik, b, cfg)
	switch {
	case err == nil:
		return errors.New("Initiate succeeded")
	case in != nil:
		return errors.New("Initiate returned a result with its error")
	}
	return err
}
