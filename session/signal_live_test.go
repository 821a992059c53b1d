package session_test

import (
	"bytes"
	"encoding/hex"
	mrand "math/rand/v2"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// The live tests hold conversations between a session.Manager configured
// for the Signal protocol and libsignal 0.103 itself
// (testdata/libsignal/live.mjs), in both roles, with and without a
// one-time prekey. They skip without Node unless
// RATCHETKIT_REQUIRE_LIBSIGNAL=1 (.ci/run sets it).

// TestLiveSignalSession: seeded conversations of 300 steps between a Go
// Manager and libsignal: bursts both ways, deliveries reordered by up to
// 3 positions, tampered copies refused by both sides (the Go store
// unchanged) before the original decrypts, and replays refused by both
// (the Go store unchanged). The Go side sends PreKeySignalMessages
// exactly until it has received a message.
func TestLiveSignalSession(t *testing.T) {
	v := libsignaltest.Load(t)
	for _, c := range []struct {
		name      string
		initiator bool
		session   int
	}{
		{"go initiator, one-time prekey", true, 0},
		{"go initiator, no one-time prekey", true, 1},
		{"go responder, one-time prekey", false, 0},
		{"go responder, no one-time prekey", false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := libsignaltest.Live(t, v.Sessions[c.session].Name)
			var d *signalDevice
			var peer store.Address
			var goEnd, lsEnd libsignaltest.End
			if c.initiator {
				d, peer, goEnd, lsEnd = liveGoInitiator(t, p, &v.Sessions[c.session])
			} else {
				d, peer, goEnd, lsEnd = liveGoResponder(t, p, c.session == 0)
			}
			stats := libsignaltest.Conversation(t, mrand.New(mrand.NewPCG(uint64(c.session), 11)), goEnd, lsEnd, 300, 6,
				func() ([]byte, bool) { return take(t, d.st, peer).bytes(), true })
			t.Logf("%v", stats)
		})
	}
}

// liveGoEnd is the Go Manager's end of a conversation with peer.
func liveGoEnd(t *testing.T, d *signalDevice, peer store.Address, canSend func() bool) libsignaltest.End {
	var received bool
	return libsignaltest.End{
		CanSend: canSend,
		Send: func(pt []byte) libsignaltest.Msg {
			wire, err := d.m.Encrypt(t.Context(), peer, pt)
			if err != nil {
				t.Fatal(err)
			}
			typ := signalwire.TypeWhisper
			if isPreKey(t, wire) {
				typ = signalwire.TypePreKey
			}
			if session.SignalMessageType(wire) != typ {
				t.Fatal("SignalMessageType disagrees with the parser")
			}
			if (typ == signalwire.TypePreKey) == received {
				t.Fatalf("Go sent message type %d after receiving: %v", typ, received)
			}
			return libsignaltest.Msg{Type: typ, Wire: wire, Plaintext: pt}
		},
		Recv: func(m libsignaltest.Msg) error {
			if session.SignalMessageType(m.Wire) != m.Type {
				t.Fatalf("SignalMessageType of libsignal's type-%d message: %d", m.Type, session.SignalMessageType(m.Wire))
			}
			got, err := d.m.Decrypt(t.Context(), peer, m.Wire)
			if err == nil {
				if !bytes.Equal(got, m.Plaintext) {
					t.Fatal("wrong plaintext from libsignal")
				}
				received = true
			}
			return err
		},
	}
}

func liveGoInitiator(t *testing.T, p *libsignaltest.Peer, ls *libsignaltest.Session) (*signalDevice, store.Address, libsignaltest.End, libsignaltest.End) {
	h := func(x string) []byte { return libsignaltest.Hex(t, x) }
	must := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	b := &pqxdh.Bundle{RegistrationID: ls.Bundle.RegistrationID, DeviceID: ls.Bundle.DeviceID,
		SignedPreKeyID: ls.Bundle.SignedPreKeyID, SignedPreKeySignature: h(ls.Bundle.SignedPreKeySignature),
		KyberPreKeyID: ls.Bundle.KyberPreKeyID, KyberPreKeySignature: h(ls.Bundle.KyberPreKeySignature)}
	var err error
	b.IdentityKey, err = keys.DecodePublicKey(h(ls.Bundle.IdentityKey))
	must(err)
	b.SignedPreKey, err = keys.DecodePublicKey(h(ls.Bundle.SignedPreKey))
	must(err)
	b.KyberPreKey, err = kyber.ParsePublicKey(h(ls.Bundle.KyberPreKey))
	must(err)
	if ls.Bundle.PreKey != nil {
		b.OneTimePreKeyID = *ls.Bundle.PreKeyID
		b.OneTimePreKey, err = keys.DecodePublicKey(h(*ls.Bundle.PreKey))
		must(err)
	}
	d := newSignalDevice(t, memory.New(), "go-alice", 1, nil)
	peer := store.Address{Name: "libsignal-bob", DeviceID: 1}
	must(d.m.StartSignalSession(t.Context(), peer, b))
	goEnd := liveGoEnd(t, d, peer, func() bool { return true })
	lsHasSession := false
	lsEnd := libsignaltest.End{
		CanSend: func() bool { return lsHasSession },
		Send: func(pt []byte) libsignaltest.Msg {
			r := p.Call(map[string]any{"op": "encrypt", "to": "go-alice", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return libsignaltest.Msg{Type: r.Type, Wire: libsignaltest.Hex(t, r.Wire), Plaintext: pt}
		},
		Recv: func(m libsignaltest.Msg) error {
			return libsignaltest.CheckReply(p.Call(map[string]any{"op": "decrypt", "from": "go-alice", "type": m.Type, "wire": hex.EncodeToString(m.Wire)}), m.Plaintext, &lsHasSession)
		},
	}
	return d, peer, goEnd, lsEnd
}

func liveGoResponder(t *testing.T, p *libsignaltest.Peer, withOPK bool) (*signalDevice, store.Address, libsignaltest.End, libsignaltest.End) {
	d := newSignalDevice(t, memory.New(), "go-bob", 1, nil)
	u := d.up
	kpk := u.KyberOneTimePreKeys[0]
	bundle := map[string]any{
		"registration_id": 99, "device_id": 1, "prekey_id": nil, "prekey": nil,
		"signed_prekey_id": u.SignedPreKeyID, "signed_prekey": hex.EncodeToString(u.SignedPreKey.Encode()),
		"signed_prekey_signature": hex.EncodeToString(u.SignedPreKeySignature),
		"identity_key":            hex.EncodeToString(u.IdentityKey.Encode()),
		"kyber_prekey_id":         kpk.ID, "kyber_prekey": hex.EncodeToString(kpk.Key.Encode()),
		"kyber_prekey_signature": hex.EncodeToString(kpk.Signature),
	}
	if withOPK {
		opk := u.OneTimePreKeys[0]
		bundle["prekey_id"], bundle["prekey"] = opk.ID, hex.EncodeToString(opk.Key.Encode())
	}
	if r := p.Call(map[string]any{"op": "process_bundle", "as": "alice", "to": "go-bob", "bundle": bundle}); !r.OK {
		t.Fatalf("libsignal refused Go's bundle: %s", r.Error)
	}
	peer := store.Address{Name: "libsignal-alice", DeviceID: 1}
	started := false
	goEnd := liveGoEnd(t, d, peer, func() bool { return started })
	recv := goEnd.Recv
	goEnd.Recv = func(m libsignaltest.Msg) error {
		err := recv(m)
		started = started || err == nil
		return err
	}
	lsEnd := libsignaltest.End{
		CanSend: func() bool { return true },
		Send: func(pt []byte) libsignaltest.Msg {
			r := p.Call(map[string]any{"op": "encrypt", "as": "alice", "to": "go-bob", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return libsignaltest.Msg{Type: r.Type, Wire: libsignaltest.Hex(t, r.Wire), Plaintext: pt}
		},
		Recv: func(m libsignaltest.Msg) error {
			var ok bool
			return libsignaltest.CheckReply(p.Call(map[string]any{"op": "decrypt", "as": "alice", "from": "go-bob", "type": m.Type, "wire": hex.EncodeToString(m.Wire)}), m.Plaintext, &ok)
		},
	}
	return d, peer, goEnd, lsEnd
}

