package session_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
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

type liveMsg struct {
	typ  int
	wire []byte
	pt   []byte
}

// liveEnd is one side: send makes a message, recv takes one.
type liveEnd struct {
	canSend func() bool
	send    func(pt []byte) liveMsg
	recv    func(m liveMsg) error
}

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
			var goEnd, lsEnd liveEnd
			if c.initiator {
				d, peer, goEnd, lsEnd = liveGoInitiator(t, p, &v.Sessions[c.session])
			} else {
				d, peer, goEnd, lsEnd = liveGoResponder(t, p, c.session == 0)
			}
			stats := liveConversation(t, mrand.New(mrand.NewPCG(uint64(c.session), 11)), goEnd, lsEnd, 300, func() *snapshot { return take(t, d.st, peer) })
			t.Logf("%v", stats)
		})
	}
}

// liveGoEnd is the Go Manager's end of a conversation with peer.
func liveGoEnd(t *testing.T, d *signalDevice, peer store.Address, canSend func() bool) liveEnd {
	var received bool
	return liveEnd{
		canSend: canSend,
		send: func(pt []byte) liveMsg {
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
			return liveMsg{typ, wire, pt}
		},
		recv: func(m liveMsg) error {
			if session.SignalMessageType(m.wire) != m.typ {
				t.Fatalf("SignalMessageType of libsignal's type-%d message: %d", m.typ, session.SignalMessageType(m.wire))
			}
			got, err := d.m.Decrypt(t.Context(), peer, m.wire)
			if err == nil {
				if !bytes.Equal(got, m.pt) {
					t.Fatal("wrong plaintext from libsignal")
				}
				received = true
			}
			return err
		},
	}
}

func liveGoInitiator(t *testing.T, p *libsignaltest.Peer, ls *libsignaltest.Session) (*signalDevice, store.Address, liveEnd, liveEnd) {
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
	lsEnd := liveEnd{
		canSend: func() bool { return lsHasSession },
		send: func(pt []byte) liveMsg {
			r := p.Call(map[string]any{"op": "encrypt", "to": "go-alice", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return liveMsg{r.Type, libsignaltest.Hex(t, r.Wire), pt}
		},
		recv: func(m liveMsg) error {
			return liveReply(p.Call(map[string]any{"op": "decrypt", "from": "go-alice", "type": m.typ, "wire": hex.EncodeToString(m.wire)}), m.pt, &lsHasSession)
		},
	}
	return d, peer, goEnd, lsEnd
}

func liveGoResponder(t *testing.T, p *libsignaltest.Peer, withOPK bool) (*signalDevice, store.Address, liveEnd, liveEnd) {
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
	recv := goEnd.recv
	goEnd.recv = func(m liveMsg) error {
		err := recv(m)
		started = started || err == nil
		return err
	}
	lsEnd := liveEnd{
		canSend: func() bool { return true },
		send: func(pt []byte) liveMsg {
			r := p.Call(map[string]any{"op": "encrypt", "as": "alice", "to": "go-bob", "plaintext": hex.EncodeToString(pt)})
			if !r.OK {
				t.Fatalf("libsignal encrypt: %s", r.Error)
			}
			return liveMsg{r.Type, libsignaltest.Hex(t, r.Wire), pt}
		},
		recv: func(m liveMsg) error {
			var ok bool
			return liveReply(p.Call(map[string]any{"op": "decrypt", "as": "alice", "from": "go-bob", "type": m.typ, "wire": hex.EncodeToString(m.wire)}), m.pt, &ok)
		},
	}
	return d, peer, goEnd, lsEnd
}

func liveReply(r libsignaltest.Reply, pt []byte, ok *bool) error {
	if !r.OK {
		return fmt.Errorf("libsignal: %s", r.Error)
	}
	if r.Plaintext != hex.EncodeToString(pt) {
		return fmt.Errorf("libsignal decrypted another plaintext")
	}
	*ok = true
	return nil
}

// liveConversation runs the seeded steps; goState reads the Go store,
// which a refused message must leave unchanged.
func liveConversation(t *testing.T, rng *mrand.Rand, goEnd, lsEnd liveEnd, steps int, goState func() *snapshot) map[string]int {
	ends := [2]liveEnd{goEnd, lsEnd}
	var queue [2][]liveMsg // queue[i]: messages to end i
	stats := map[string]int{}
	for step := range steps {
		i := rng.IntN(2)
		if rng.IntN(2) == 0 {
			if !ends[i].canSend() {
				continue
			}
			for range 1 + rng.IntN(3) {
				pt := []byte(fmt.Sprintf("step %d from %d: %s", step, i, bytes.Repeat([]byte{'x'}, rng.IntN(40))))
				m := ends[i].send(pt)
				queue[1-i] = append(queue[1-i], m)
				stats[fmt.Sprintf("sent by %s, type %d", []string{"go", "libsignal"}[i], m.typ)]++
			}
			continue
		}
		q := queue[i]
		if len(q) == 0 {
			continue
		}
		k := rng.IntN(min(len(q), 4))
		m := q[k]
		queue[i] = append(q[:k], q[k+1:]...)
		if rng.IntN(6) == 0 {
			var before *snapshot
			if i == 0 {
				before = goState()
			}
			if err := ends[i].recv(liveMsg{m.typ, tamperInner(t, rng, m), m.pt}); err == nil {
				t.Fatalf("step %d: end %d accepted a tampered message", step, i)
			}
			if i == 0 && !before.equal(goState()) {
				t.Fatalf("step %d: a tampered message changed Go's store", step)
			}
			stats["tampered refused"]++
		}
		if err := ends[i].recv(m); err != nil {
			t.Fatalf("step %d: end %d refused a message: %v", step, i, err)
		}
		stats["delivered"]++
		if rng.IntN(8) == 0 {
			var before *snapshot
			if i == 0 {
				before = goState()
			}
			if err := ends[i].recv(m); err == nil {
				t.Fatalf("step %d: end %d accepted a replay", step, i)
			}
			if i == 0 && !before.equal(goState()) {
				t.Fatalf("step %d: a replay changed Go's store", step)
			}
			stats["replay refused"]++
		}
	}
	if stats["delivered"] < steps/4 || stats["tampered refused"] == 0 || stats["replay refused"] == 0 {
		t.Fatalf("a conversation that tests little: %v", stats)
	}
	return stats
}

// tamperInner flips one bit near the end of the SignalMessage in m (for a
// PreKeySignalMessage, inside its message field, which is what the MAC
// covers).
func tamperInner(t *testing.T, rng *mrand.Rand, m liveMsg) []byte {
	flip := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-1-rng.IntN(min(40, len(b)-1))] ^= byte(1 << rng.IntN(8))
		return b
	}
	if m.typ != signalwire.TypePreKey {
		return flip(m.wire)
	}
	pk, _, err := signalwire.ParsePreKeySignalMessage(m.wire)
	if err != nil {
		t.Fatal(err)
	}
	pk.Message = flip(pk.Message)
	out, err := pk.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
