package main

import (
	"context"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// A session_initiate or session_respond id is one device with its own
// session.Manager over its own memory store, talking to one peer device:
// the driver protocol has a single peer per id (PROTOCOL.md 7, 9.3).
var (
	peerAddress = store.Address{Name: "peer", DeviceID: 1}
	ownDeviceID = uint32(1)
)

// keyFeed is the key source of a session-layer id's Manager, which draws
// X3DH ephemeral keys and ratchet key pairs from it. It hands out the keys
// the current request injected, raw so that a key of the wrong length
// fails where it is drawn, and fresh random keys when none was injected.
type keyFeed struct {
	// queue is drawn from first, in order: session_initiate's ek_priv,
	// then dh_priv (nil for either means a fresh key).
	queue [][]byte
	// sticky, when set, is handed out on every draw once queue is empty:
	// a decrypt's dh_priv, offered to whichever session takes a DH step
	// (PROTOCOL.md 12.17).
	sticky []byte
}

func (f *keyFeed) draw() (*keys.PrivateKey, error) {
	if len(f.queue) > 0 {
		raw := f.queue[0]
		f.queue = f.queue[1:]
		if raw != nil {
			return keys.NewPrivateKey(raw)
		}
		return keys.GeneratePrivateKey()
	}
	if f.sticky != nil {
		return keys.NewPrivateKey(f.sticky)
	}
	return keys.GeneratePrivateKey()
}

// device is a session-layer id: an initiator (session_initiate) or a
// responder (session_respond).
type device struct {
	m         *session.Manager
	feed      *keyFeed
	initiator bool
}

// newDevice makes a Manager over a fresh memory store that holds ik as the
// local identity and whatever fill adds.
func newDevice(ik *keys.IdentityKeyPair, info []byte, initiator bool, fill func(ctx context.Context, tx store.Tx) error) (*device, error) {
	ctx := context.Background()
	st := memory.New()
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: ownDeviceID}); err != nil {
			return err
		}
		if fill != nil {
			return fill(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d := &device{feed: new(keyFeed), initiator: initiator}
	cfg := session.Config{Info: info}
	hazmat.SetSessionKeySource(&cfg, d.feed.draw)
	if d.m, err = session.New(st, &cfg); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *device) encrypt(pt []byte) ([]byte, error) {
	return d.m.Encrypt(context.Background(), peerAddress, pt)
}

func (d *device) decrypt(msg []byte, dh *keys.PrivateKey) ([]byte, error) {
	if d.initiator && len(msg) >= minMessageSize && msg[0] == typePreKey {
		// The driver's initiator takes no prekey messages (PROTOCOL.md
		// 6.3), although a Manager, which is both roles, would.
		return nil, kindNoSession
	}
	if dh != nil {
		raw := dh.Bytes()
		defer clear(raw)
		d.feed.sticky = raw
		defer func() { d.feed.sticky = nil }()
	}
	return d.m.Decrypt(context.Background(), peerAddress, msg)
}

// clear drops the device; the memory store wipes what it holds only when
// records are replaced, so this is left to the garbage collector.
func (d *device) clear() {}

// Wire constants the initiator check needs; the session package keeps its
// own unexported.
const (
	minMessageSize = 58
	typePreKey     = 0x02
)

// sessionInitiate makes an initiator: X3DH on the bundle and the first
// ratchet step, through session.Manager.StartSession.
func (d *driver) sessionInitiate(r request) (answer, error) {
	f := fields{r: r}
	id, ikRaw := f.str("id"), f.bytes("ik_priv")
	ekRaw, hasEK := f.optBytes("ek_priv")
	dhRaw, hasDH := f.optBytes("dh_priv")
	bf := readBundle(&f)
	info, _ := f.optBytes("info")
	if f.err != nil {
		return nil, f.err
	}

	// Keys in the order the X3DH initiator reads them (PROTOCOL.md 4.2);
	// dh_priv is drawn by the ratchet after X3DH, so a bad one is reported
	// there.
	ik, err := identityKey(ikRaw)
	if err != nil {
		return nil, err
	}
	defer ik.Clear()
	if hasEK {
		if _, err := keys.NewPrivateKey(ekRaw); err != nil {
			return nil, err
		}
	}
	b, err := bf.decode()
	if err != nil {
		return nil, err
	}
	dev, err := newDevice(ik, info, true, nil)
	if err != nil {
		return nil, err
	}
	dev.feed.queue = [][]byte{nil, nil}
	if hasEK {
		dev.feed.queue[0] = ekRaw
	}
	if hasDH {
		dev.feed.queue[1] = dhRaw
	}
	err = dev.m.StartSession(context.Background(), peerAddress, b)
	dev.feed.queue = nil
	clear(ekRaw)
	clear(dhRaw)
	if err != nil {
		return nil, err
	}
	d.store(id, dev)
	return answer{}, nil
}

// preKeyFields is one {"id": N, "priv": K} of session_respond.
type preKeyFields struct {
	id   uint32
	priv []byte
}

func readPreKey(o *fields) preKeyFields {
	return preKeyFields{id: o.u32("id"), priv: o.bytes("priv")}
}

// sessionRespond makes a responder holding one signed prekey (signed here:
// the protocol gives no signature, and the Manager never checks its own)
// and the listed one-time prekeys, with no session and no trusted peer.
func (d *driver) sessionRespond(r request) (answer, error) {
	f := fields{r: r}
	id, ikRaw := f.str("id"), f.bytes("ik_priv")
	spkObj := f.object("spk")
	spkF := readPreKey(spkObj)
	f.keep(spkObj.err)
	opkObjs := f.objects("opks")
	opkF := make([]preKeyFields, len(opkObjs))
	for i, o := range opkObjs {
		opkF[i] = readPreKey(o)
		f.keep(o.err)
	}
	info, _ := f.optBytes("info")
	if f.err != nil {
		return nil, f.err
	}
	seen := make(map[uint32]bool, len(opkF))
	for _, p := range opkF {
		if seen[p.id] {
			return nil, kindMalformed
		}
		seen[p.id] = true
	}

	ik, err := identityKey(ikRaw)
	if err != nil {
		return nil, err
	}
	defer ik.Clear()
	spkKey, err := optKey(spkF.priv, true)
	if err != nil {
		return nil, err
	}
	spk, err := keys.NewSignedPreKey(spkF.id, spkKey, ik.Sign(spkKey.PublicKey().Encode()), time.Now())
	if err != nil {
		return nil, err
	}
	opks := make([]*keys.OneTimePreKey, len(opkF))
	for i, p := range opkF {
		k, err := optKey(p.priv, true)
		if err != nil {
			return nil, err
		}
		opks[i] = keys.NewOneTimePreKey(p.id, k)
	}
	dev, err := newDevice(ik, info, false, func(ctx context.Context, tx store.Tx) error {
		if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
			return err
		}
		if len(opks) == 0 {
			return nil
		}
		return tx.PreKeys().Add(ctx, opks)
	})
	spkKey.Clear()
	for _, o := range opks {
		o.PrivateKey().Clear()
	}
	if err != nil {
		return nil, err
	}
	d.store(id, dev)
	return answer{}, nil
}
