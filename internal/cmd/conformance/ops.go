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
// then checks the contents in the order of PROTOCOL.md 8.2 and 9.2.

// xeddsaSign signs with the z of the request instead of fresh random
// bytes, which only internal/xeddsa offers.
func (d *driver) xeddsaSign(r request) (answer, error) {
	f := fields{r: r}
	priv, msg, z := f.bytes("priv"), f.bytes("msg"), f.bytes("z")
	if f.err != nil {
		return nil, f.err
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
	f := fields{r: r}
	pub, msg, sig := f.bytes("pub"), f.bytes("msg"), f.bytes("sig")
	if f.err != nil {
		return answer{"ok": false}, nil
	}
	k, err := keys.DecodePublicKey(pub)
	if err != nil {
		return answer{"ok": false}, nil
	}
	return answer{"ok": k.Verify(msg, sig)}, nil
}

// bundleFields is a request's bundle object, read but not yet decoded.
type bundleFields struct {
	ik, spk, spkSig, opk []byte
	spkID, opkID         uint32
	hasOPK               bool
}

func readBundle(f *fields) *bundleFields {
	o := f.object("bundle")
	var b bundleFields
	b.ik, b.spk = o.bytes("ik"), o.bytes("spk")
	b.spkID = o.u32("spk_id")
	b.spkSig = o.bytes("spk_sig")
	b.opk, b.hasOPK = o.optBytes("opk")
	var hasID bool
	b.opkID, hasID = o.optU32("opk_id")
	if b.hasOPK != hasID {
		o.keep(kindMalformed)
	}
	f.keep(o.err)
	return &b
}

// decode decodes the bundle's keys: bad_key for one that does not. Their
// order and the signature are x3dh.Initiate's to check.
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

// identityKey returns the identity key pair with the private key raw
// (bad_key when not 32 bytes). It wipes raw.
func identityKey(raw []byte) (*keys.IdentityKeyPair, error) {
	ik, err := keys.NewIdentityKeyPair(raw)
	clear(raw)
	return ik, err
}

// optKey returns the optional private key raw: nil when not given, bad_key
// when not 32 bytes. It wipes raw.
func optKey(raw []byte, given bool) (*keys.PrivateKey, error) {
	if !given {
		return nil, nil
	}
	k, err := keys.NewPrivateKey(raw)
	clear(raw)
	return k, err
}

// x3dhInitiate runs X3DH as Alice with the request's ephemeral key, handed
// to x3dh.Initiate through its hazmat key source. An empty info is the
// default, as an absent one (PROTOCOL.md 4.4): x3dh.Config says the same.
func (d *driver) x3dhInitiate(r request) (answer, error) {
	f := fields{r: r}
	ikRaw, ekRaw := f.bytes("ik_priv"), f.bytes("ek_priv")
	bf := readBundle(&f)
	info, _ := f.optBytes("info")
	if f.err != nil {
		return nil, f.err
	}
	ik, err := identityKey(ikRaw)
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
	cfg := &x3dh.Config{Info: info}
	hazmat.SetX3DHKeySource(cfg, hazmat.Keys(ek))
	in, err := x3dh.Initiate(ik, b, cfg)
	if err != nil {
		return nil, err
	}
	defer in.Clear()
	return answer{"sk": hex.EncodeToString(in.SK[:]), "ad": hex.EncodeToString(in.AD[:])}, nil
}

// The ids x3dh_respond gives the prekeys it is handed: the request names
// none, and x3dh.Respond only checks that the header and the keys agree.
const (
	respondSPKID = 1
	respondOPKID = 2
)

// x3dhRespond runs X3DH as Bob. The header it builds names the keys it was
// given, so x3dh.ErrPreKeyMismatch cannot occur here.
func (d *driver) x3dhRespond(r request) (answer, error) {
	f := fields{r: r}
	ikRaw, spkRaw := f.bytes("ik_priv"), f.bytes("spk_priv")
	opkRaw, hasOPK := f.optBytes("opk_priv")
	peerIK, peerEK := f.bytes("peer_ik"), f.bytes("peer_ek")
	info, _ := f.optBytes("info")
	if f.err != nil {
		return nil, f.err
	}
	ik, err := identityKey(ikRaw)
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
	res, err := x3dh.Respond(ik, spk, opk, h, &x3dh.Config{Info: info})
	if err != nil {
		return nil, err
	}
	defer res.Clear()
	return answer{"sk": hex.EncodeToString(res.SK[:]), "ad": hex.EncodeToString(res.AD[:])}, nil
}

// readRatchetInit reads what both ratchet_init operations share: the id,
// sk and ad, and the limits as a ratchet.Config. The protocol's limit 0 is
// the ratchet's "none" (a negative value there, where 0 means the default).
func readRatchetInit(f *fields) (id string, sk, ad []byte, cfg *ratchet.Config) {
	id = f.str("id")
	sk, ad = f.bytes("sk"), f.bytes("ad")
	cfg = new(ratchet.Config)
	for _, l := range []struct {
		name string
		dst  *int
	}{{"max_skip", &cfg.MaxSkip}, {"max_skipped_keys", &cfg.MaxSkippedKeys}} {
		switch v, ok := f.optU32(l.name); {
		case !ok:
			// The default: 0 in ratchet.Config.
		case v == 0:
			*l.dst = -1
		default:
			*l.dst = int(min(v, ratchet.MaxLimit+1))
		}
	}
	return id, sk, ad, cfg
}

// checkRatchetInit judges sk, ad and the limits once every field has been
// read, all as malformed (PROTOCOL.md 9.2, 12.13): sk must be 32 bytes,
// and ad and the limits within what package ratchet accepts (MaxADSize,
// MaxLimit; the library bounds the limits because a forged message may
// cost MaxSkip chain steps).
func checkRatchetInit(sk, ad []byte, cfg *ratchet.Config) error {
	if len(sk) != ratchet.SecretSize || len(ad) > ratchet.MaxADSize ||
		cfg.MaxSkip > ratchet.MaxLimit || cfg.MaxSkippedKeys > ratchet.MaxLimit {
		return kindMalformed
	}
	return nil
}

// ratchetInitAlice starts a bare initiator session; dh_priv, if given, is
// its first ratchet key, through the Config's hazmat key source.
func (d *driver) ratchetInitAlice(r request) (answer, error) {
	f := fields{r: r}
	id, sk, ad, cfg := readRatchetInit(&f)
	peer := f.bytes("peer_dh")
	dhRaw, hasDH := f.optBytes("dh_priv")
	if f.err != nil {
		return nil, f.err
	}
	defer clear(sk)
	if err := checkRatchetInit(sk, ad, cfg); err != nil {
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

// ratchetInitBob starts a bare responder session whose first ratchet key
// pair (the signed prekey, in X3DH) is dh_priv.
func (d *driver) ratchetInitBob(r request) (answer, error) {
	f := fields{r: r}
	id, sk, ad, cfg := readRatchetInit(&f)
	dhRaw := f.bytes("dh_priv")
	if f.err != nil {
		return nil, f.err
	}
	defer clear(sk)
	if err := checkRatchetInit(sk, ad, cfg); err != nil {
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

// store keeps c under id, replacing (and wiping) what was there: only a
// request that succeeded gets here, so a failed one leaves the id as it
// was (PROTOCOL.md 9.3).
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
	f := fields{r: r}
	id, pt := f.str("id"), f.bytes("pt")
	if f.err != nil {
		return nil, f.err
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

// decrypt checks dh_priv after the session id and before the message,
// whether or not the message would cause a DH step (PROTOCOL.md 9.2).
func (d *driver) decrypt(r request) (answer, error) {
	f := fields{r: r}
	id, msg := f.str("id"), f.bytes("msg")
	dhRaw, hasDH := f.optBytes("dh_priv")
	if f.err != nil {
		return nil, f.err
	}
	c, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
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

// decrypt offers dh, if not nil, as the key of a DH step the message
// causes. The ratchet draws that key only when it commits the step, so a
// message that takes no step leaves it unused; the source is removed
// afterwards either way.
func (b *bare) decrypt(msg []byte, dh *keys.PrivateKey) ([]byte, error) {
	if dh == nil {
		return b.s.Decrypt(msg)
	}
	hazmat.SetRatchetKeySource(b.s, hazmat.Keys(dh))
	defer hazmat.SetRatchetKeySource(b.s, nil)
	return b.s.Decrypt(msg)
}

func (b *bare) clear() { b.s.Clear() }
