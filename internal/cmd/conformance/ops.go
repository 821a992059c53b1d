package main

import (
	"encoding/hex"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/internal/xeddsa"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// Every operation reads all of its fields first, so that a request's
// shape (malformed) is judged before its contents (PROTOCOL.md 9.1), and
// then checks contents in the order PROTOCOL.md 8.2 and 9.2 give.

func (d *driver) xeddsaSign(r request) (answer, error) {
	priv, err := r.bytes("priv")
	if err != nil {
		return nil, err
	}
	msg, err := r.bytes("msg")
	if err != nil {
		return nil, err
	}
	z, err := r.bytes("z")
	if err != nil {
		return nil, err
	}
	// z before priv (PROTOCOL.md 9.2): a z of the wrong length is an
	// unusable request, a priv of the wrong length a bad key.
	if len(z) != xeddsa.RandomSize {
		return nil, kindMalformed
	}
	if len(priv) != xeddsa.KeySize {
		return nil, kindBadKey
	}
	k := xeddsa.NewPrivateKey((*[xeddsa.KeySize]byte)(priv))
	clear(priv)
	sig := k.Sign(msg, (*[xeddsa.RandomSize]byte)(z))
	return answer{"sig": hex.EncodeToString(sig[:])}, nil
}

// xeddsaVerify never fails: whatever cannot be read is not a valid
// signature.
func (d *driver) xeddsaVerify(r request) (answer, error) {
	no := answer{"ok": false}
	pub, err := r.bytes("pub")
	if err != nil {
		return no, nil
	}
	msg, err := r.bytes("msg")
	if err != nil {
		return no, nil
	}
	sig, err := r.bytes("sig")
	if err != nil {
		return no, nil
	}
	k, err := keys.DecodePublicKey(pub)
	if err != nil {
		return no, nil
	}
	return answer{"ok": k.Verify(msg, sig)}, nil
}

// bundleFields is a request's bundle object, read but not yet decoded.
type bundleFields struct {
	ik, spk, spkSig, opk []byte
	spkID, opkID         uint32
	hasOPK               bool
}

func readBundle(r request) (*bundleFields, error) {
	o, err := r.object("bundle")
	if err != nil {
		return nil, err
	}
	var b bundleFields
	if b.ik, err = o.bytes("ik"); err != nil {
		return nil, err
	}
	if b.spk, err = o.bytes("spk"); err != nil {
		return nil, err
	}
	if b.spkID, err = o.u32("spk_id"); err != nil {
		return nil, err
	}
	if b.spkSig, err = o.bytes("spk_sig"); err != nil {
		return nil, err
	}
	var hasID bool
	if b.opk, b.hasOPK, err = o.optBytes("opk"); err != nil {
		return nil, err
	}
	if b.opkID, hasID, err = o.optU32("opk_id"); err != nil {
		return nil, err
	}
	if b.hasOPK != hasID {
		return nil, kindMalformed
	}
	return &b, nil
}

// decode decodes the bundle's keys: bad_key for one that does not. Order
// and signature are x3dh.Initiate's to check.
func (b *bundleFields) decode() (*x3dh.Bundle, error) {
	ik, err := keys.DecodePublicKey(b.ik)
	if err != nil {
		return nil, err
	}
	spk, err := keys.DecodePublicKey(b.spk)
	if err != nil {
		return nil, err
	}
	out := &x3dh.Bundle{
		IdentityKey:           ik,
		SignedPreKeyID:        b.spkID,
		SignedPreKey:          spk,
		SignedPreKeySignature: b.spkSig,
	}
	if b.hasOPK {
		if out.OneTimePreKey, err = keys.DecodePublicKey(b.opk); err != nil {
			return nil, err
		}
		out.OneTimePreKeyID = b.opkID
	}
	return out, nil
}

// x3dhConfig returns the X3DH options of a request: its info, if any. An
// empty info is the default, as an absent one (PROTOCOL.md 4.4).
func x3dhConfig(r request) (*x3dh.Config, error) {
	info, _, err := r.optBytes("info")
	if err != nil {
		return nil, err
	}
	return &x3dh.Config{Info: info}, nil
}

// optKey returns the optional private key name: nil when absent, bad_key
// when not 32 bytes.
func optKey(raw []byte, given bool) (*keys.PrivateKey, error) {
	if !given {
		return nil, nil
	}
	k, err := keys.NewPrivateKey(raw)
	clear(raw)
	return k, err
}

func (d *driver) x3dhInitiate(r request) (answer, error) {
	ikRaw, err := r.bytes("ik_priv")
	if err != nil {
		return nil, err
	}
	ekRaw, err := r.bytes("ek_priv")
	if err != nil {
		return nil, err
	}
	bf, err := readBundle(r)
	if err != nil {
		return nil, err
	}
	cfg, err := x3dhConfig(r)
	if err != nil {
		return nil, err
	}
	ik, err := keys.NewIdentityKeyPair(ikRaw)
	clear(ikRaw)
	if err != nil {
		return nil, err
	}
	defer ik.Clear()
	ek, err := optKey(ekRaw, true)
	if err != nil {
		return nil, err
	}
	b, err := bf.decode()
	if err != nil {
		return nil, err
	}
	hazmat.SetX3DHKeySource(cfg, hazmat.Keys(ek))
	in, err := x3dh.Initiate(ik, b, cfg)
	if err != nil {
		return nil, err
	}
	defer in.Clear()
	return answer{"sk": hex.EncodeToString(in.SK[:]), "ad": hex.EncodeToString(in.AD[:])}, nil
}

// The ids x3dh_respond gives the prekeys it is handed: the request names
// no ids, and Respond only checks that the header and the keys agree.
const (
	respondSPKID = 1
	respondOPKID = 2
)

func (d *driver) x3dhRespond(r request) (answer, error) {
	ikRaw, err := r.bytes("ik_priv")
	if err != nil {
		return nil, err
	}
	spkRaw, err := r.bytes("spk_priv")
	if err != nil {
		return nil, err
	}
	opkRaw, hasOPK, err := r.optBytes("opk_priv")
	if err != nil {
		return nil, err
	}
	peerIK, err := r.bytes("peer_ik")
	if err != nil {
		return nil, err
	}
	peerEK, err := r.bytes("peer_ek")
	if err != nil {
		return nil, err
	}
	cfg, err := x3dhConfig(r)
	if err != nil {
		return nil, err
	}

	ik, err := keys.NewIdentityKeyPair(ikRaw)
	clear(ikRaw)
	if err != nil {
		return nil, err
	}
	defer ik.Clear()
	spkKey, err := optKey(spkRaw, true)
	if err != nil {
		return nil, err
	}
	defer spkKey.Clear()
	// Respond does not look at the signature: the prekey is Bob's own.
	spk, err := keys.NewSignedPreKey(respondSPKID, spkKey, make([]byte, keys.SignatureSize), time.Time{})
	if err != nil {
		return nil, err
	}
	opkKey, err := optKey(opkRaw, hasOPK)
	if err != nil {
		return nil, err
	}
	h := &x3dh.Header{SignedPreKeyID: respondSPKID}
	var opk *keys.OneTimePreKey
	if opkKey != nil {
		defer opkKey.Clear()
		opk = keys.NewOneTimePreKey(respondOPKID, opkKey)
		h.HasOneTimePreKey, h.OneTimePreKeyID = true, respondOPKID
	}
	if h.IdentityKey, err = keys.DecodePublicKey(peerIK); err != nil {
		return nil, err
	}
	if h.EphemeralKey, err = keys.DecodePublicKey(peerEK); err != nil {
		return nil, err
	}
	res, err := x3dh.Respond(ik, spk, opk, h, cfg)
	if err != nil {
		return nil, err
	}
	defer res.Clear()
	return answer{"sk": hex.EncodeToString(res.SK[:]), "ad": hex.EncodeToString(res.AD[:])}, nil
}

// ratchetConfig reads max_skip and max_skipped_keys into a ratchet.Config.
// The protocol's 0 is the ratchet's "none" (a negative value there, where 0
// means the default). Values above ratchet.MaxLimit, which the library
// refuses to bound the work a forged message can cause, are malformed: the
// request asks for a session this implementation does not offer
// (PROTOCOL.md 9.2).
func ratchetConfig(r request) (*ratchet.Config, error) {
	var cfg ratchet.Config
	for _, l := range []struct {
		name string
		dst  *int
	}{{"max_skip", &cfg.MaxSkip}, {"max_skipped_keys", &cfg.MaxSkippedKeys}} {
		v, ok, err := r.optU32(l.name)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			// The default: 0 in ratchet.Config.
		case v == 0:
			*l.dst = -1
		case v > ratchet.MaxLimit:
			return nil, kindMalformed
		default:
			*l.dst = int(v)
		}
	}
	return &cfg, nil
}

// readSecret reads sk and ad of ratchet_init_*: sk must be 32 bytes
// (PROTOCOL.md 12.13) and ad at most ratchet.MaxADSize, both malformed
// otherwise.
func readSecret(r request) (sk, ad []byte, err error) {
	if sk, err = r.bytes("sk"); err != nil {
		return nil, nil, err
	}
	if ad, err = r.bytes("ad"); err != nil {
		return nil, nil, err
	}
	return sk, ad, nil
}

func checkSecret(sk, ad []byte) error {
	if len(sk) != ratchet.SecretSize || len(ad) > ratchet.MaxADSize {
		return kindMalformed
	}
	return nil
}

func (d *driver) ratchetInitAlice(r request) (answer, error) {
	id, err := r.str("id")
	if err != nil {
		return nil, err
	}
	sk, ad, err := readSecret(r)
	if err != nil {
		return nil, err
	}
	defer clear(sk)
	peer, err := r.bytes("peer_dh")
	if err != nil {
		return nil, err
	}
	dhRaw, hasDH, err := r.optBytes("dh_priv")
	if err != nil {
		return nil, err
	}
	cfg, err := ratchetConfig(r)
	if err != nil {
		return nil, err
	}
	if err := checkSecret(sk, ad); err != nil {
		return nil, err
	}
	peerKey, err := keys.DecodePublicKey(peer)
	if err != nil {
		return nil, err
	}
	dh, err := optKey(dhRaw, hasDH)
	if err != nil {
		return nil, err
	}
	if dh != nil {
		defer dh.Clear()
		hazmat.SetRatchetKeySource(cfg, hazmat.Keys(dh))
	}
	s, err := ratchet.NewInitiator(sk, ad, peerKey, cfg)
	if err != nil {
		return nil, err
	}
	d.store(id, newBare(s))
	return answer{}, nil
}

func (d *driver) ratchetInitBob(r request) (answer, error) {
	id, err := r.str("id")
	if err != nil {
		return nil, err
	}
	sk, ad, err := readSecret(r)
	if err != nil {
		return nil, err
	}
	defer clear(sk)
	dhRaw, err := r.bytes("dh_priv")
	if err != nil {
		return nil, err
	}
	cfg, err := ratchetConfig(r)
	if err != nil {
		return nil, err
	}
	if err := checkSecret(sk, ad); err != nil {
		return nil, err
	}
	dh, err := optKey(dhRaw, true)
	if err != nil {
		return nil, err
	}
	defer dh.Clear()
	s, err := ratchet.NewResponder(sk, ad, dh, cfg)
	if err != nil {
		return nil, err
	}
	d.store(id, newBare(s))
	return answer{}, nil
}

// store keeps c under id, replacing (and wiping) what was there.
func (d *driver) store(id string, c conn) {
	if old, ok := d.sessions[id]; ok {
		old.clear()
	}
	d.sessions[id] = c
}

func (d *driver) lookup(id string) (conn, error) {
	c, ok := d.sessions[id]
	if !ok {
		return nil, kindUnknownSession
	}
	return c, nil
}

func (d *driver) encrypt(r request) (answer, error) {
	id, err := r.str("id")
	if err != nil {
		return nil, err
	}
	pt, err := r.bytes("pt")
	if err != nil {
		return nil, err
	}
	c, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	msg, err := c.encrypt(pt)
	if err != nil {
		return nil, err
	}
	return answer{"msg": hex.EncodeToString(msg)}, nil
}

func (d *driver) decrypt(r request) (answer, error) {
	id, err := r.str("id")
	if err != nil {
		return nil, err
	}
	msg, err := r.bytes("msg")
	if err != nil {
		return nil, err
	}
	dhRaw, hasDH, err := r.optBytes("dh_priv")
	if err != nil {
		return nil, err
	}
	c, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	// After the id, before the message (PROTOCOL.md 9.2).
	dh, err := optKey(dhRaw, hasDH)
	if err != nil {
		return nil, err
	}
	if dh != nil {
		defer dh.Clear()
	}
	pt, err := c.decrypt(msg, dh)
	if err != nil {
		return nil, err
	}
	return answer{"pt": hex.EncodeToString(pt)}, nil
}

// bare is a session of ratchet_init_*: a ratchet.Session alone, which
// takes ratchet messages only.
type bare struct{ s *ratchet.Session }

// newBare wraps s, which must draw fresh ratchet keys from now on: a key
// injected at creation was for the first step only.
func newBare(s *ratchet.Session) *bare {
	hazmat.SetRatchetKeySource(s, nil)
	return &bare{s}
}

func (b *bare) encrypt(pt []byte) ([]byte, error) { return b.s.Encrypt(pt) }

func (b *bare) decrypt(msg []byte, dh *keys.PrivateKey) ([]byte, error) {
	return decryptWith(b.s, msg, dh)
}

func (b *bare) clear() { b.s.Clear() }

// decryptWith decrypts msg on s with dh, if not nil, as the key of a DH
// step the message causes. The ratchet draws that key only when it commits
// the step, so a message that takes no step leaves it unused; the source is
// removed afterwards either way.
func decryptWith(s *ratchet.Session, msg []byte, dh *keys.PrivateKey) ([]byte, error) {
	if dh == nil {
		return s.Decrypt(msg)
	}
	hazmat.SetRatchetKeySource(s, hazmat.Keys(dh))
	defer hazmat.SetRatchetKeySource(s, nil)
	return s.Decrypt(msg)
}
