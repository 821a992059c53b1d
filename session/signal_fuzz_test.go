package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signallive"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// FuzzSignalPreKeys is FuzzSignalDecrypt with prekeys: a Signal Manager
// whose every prekey is reproducible (signed prekey 1, one-time EC
// prekeys 7 to 9, one-time Kyber prekeys 20 to 22, last-resort Kyber
// prekey 30) and which holds a session with Alice, made by decrypting the
// first seed. The first input byte picks the sender's address. The
// committed seeds are real messages: PreKeySignalMessages from Go
// Managers and libsignal that run the PQXDH responder and decrypt,
// Alice's later messages (one bare SignalMessage), and near misses.
// Nothing panics; a failed Decrypt returns no plaintext and leaves the
// store (records, identities, prekeys) byte for byte as it was; a
// successful one saves.
func FuzzSignalPreKeys(f *testing.F) {
	fx := getSignalFuzzFixture(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		m, st := fx.restore(t)
		before := signalFuzzDigest(t, st)
		pt, err := m.Decrypt(ctx, signalFuzzAddrs[int(data[0])%len(signalFuzzAddrs)], data[1:])
		after := signalFuzzDigest(t, st)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			if before != after {
				t.Fatalf("failed Decrypt (%v) changed the store", err)
			}
			return
		}
		if before == after {
			t.Fatal("successful Decrypt saved nothing")
		}
	})
}

// signalFuzzAddrs are the senders an input can claim; the fixture holds a
// session with the first.
var signalFuzzAddrs = []store.Address{
	{Name: "alice", DeviceID: 1}, {Name: "carol", DeviceID: 1}, {Name: "dave", DeviceID: 1},
	{Name: "libsignal", DeviceID: 1}, {Name: "mallory", DeviceID: 9},
}

const signalFuzzDir = "testdata/fuzz/FuzzSignalPreKeys"

// signalFuzzBob is the reproducible responder's name (fixedKey labels).
const signalFuzzBob = "signal fuzz bob"

// signalFuzzKeys stores the responder's keys in st. The Kyber prekeys are
// made from fixed seeds; the signatures (XEdDSA draws a nonce) differ from
// run to run, which no responder checks.
func signalFuzzKeys(t testing.TB, st store.Store) {
	t.Helper()
	ctx := context.Background()
	ik := fixedIdentity(signalFuzzBob)
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: ik, DeviceID: 1}); err != nil {
			return err
		}
		spkKey := fixedKey(signalFuzzBob + " spk")
		spk, err := keys.NewSignedPreKey(1, spkKey, ik.Sign(spkKey.PublicKey().Encode()), fixedTime)
		if err != nil {
			return err
		}
		if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
			return err
		}
		var opks []*keys.OneTimePreKey
		for id := uint32(7); id <= 9; id++ {
			opks = append(opks, keys.NewOneTimePreKey(id, fixedKey(fmt.Sprint(signalFuzzBob, " opk ", id))))
		}
		if err := tx.PreKeys().Add(ctx, opks); err != nil {
			return err
		}
		var kpks []*kyber.PreKey
		for _, id := range []uint32{20, 21, 22, 30} {
			k := signalFuzzKyber(id)
			p, err := kyber.NewPreKey(id, k, ik.Sign(k.PublicKey().Encode()), fixedTime, id == 30)
			if err != nil {
				return err
			}
			kpks = append(kpks, p)
		}
		kp, err := store.KyberPreKeysOf(tx)
		if err != nil {
			return err
		}
		return kp.Add(ctx, kpks)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// signalFuzzKyber derives Kyber prekey id's key from a fixed seed.
func signalFuzzKyber(id uint32) *kyber.PrivateKey {
	var seed []byte
	for i := byte(0); len(seed) < kyber.SeedSize; i++ {
		h := sha256.Sum256(fmt.Appendf(nil, "%s kyber %d/%d", signalFuzzBob, id, i))
		seed = append(seed, h[:]...)
	}
	k, err := kyber.NewPrivateKey(seed[:kyber.SeedSize])
	if err != nil {
		panic(err) // unreachable: any 64 bytes are a seed
	}
	return k
}

// signalFuzzBundle is the responder's bundle with one-time EC prekey opk
// (0: none) and Kyber prekey kid.
func signalFuzzBundle(opk, kid uint32) *pqxdh.Bundle {
	ik := fixedIdentity(signalFuzzBob)
	spk := fixedKey(signalFuzzBob + " spk").PublicKey()
	kpub := signalFuzzKyber(kid).PublicKey()
	b := &pqxdh.Bundle{
		DeviceID: 1, IdentityKey: ik.PublicKey(),
		SignedPreKeyID: 1, SignedPreKey: spk, SignedPreKeySignature: ik.Sign(spk.Encode()),
		KyberPreKeyID: kid, KyberPreKey: kpub, KyberPreKeySignature: ik.Sign(kpub.Encode()),
	}
	if opk != 0 {
		b.OneTimePreKeyID, b.OneTimePreKey = opk, fixedKey(fmt.Sprint(signalFuzzBob, " opk ", opk)).PublicKey()
	}
	return b
}

// signalFuzzFixture is the responder's store after it decrypted Alice's
// first message, restorable into a fresh store per input.
type signalFuzzFixture struct {
	local   *store.LocalIdentity
	spk     *keys.SignedPreKey
	opks    []*keys.OneTimePreKey
	kpks    []*kyber.PreKey
	aliceIK *keys.PublicKey
	record  []byte
}

var (
	signalFuzzOnce sync.Once
	signalFuzzFx   *signalFuzzFixture
)

func getSignalFuzzFixture(t testing.TB) *signalFuzzFixture {
	signalFuzzOnce.Do(func() {
		ctx := context.Background()
		first := readSignalFuzzSeed(t, "seed-00")
		st := memory.New()
		signalFuzzKeys(t, st)
		m, err := New(st, &Config{Protocol: ratchet.Signal})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Decrypt(ctx, signalFuzzAddrs[first[0]], first[1:]); err != nil {
			t.Fatalf("the fixture's first message: %v", err)
		}
		fx := new(signalFuzzFixture)
		err = st.View(ctx, func(tx store.Tx) error {
			var err error
			if fx.local, err = tx.Local().Load(ctx); err != nil {
				return err
			}
			if fx.spk, err = tx.SignedPreKeys().Load(ctx, 1); err != nil {
				return err
			}
			for id := uint32(8); id <= 9; id++ {
				k, err := tx.PreKeys().Load(ctx, id)
				if err != nil {
					return err
				}
				fx.opks = append(fx.opks, k)
			}
			kp, err := store.KyberPreKeysOf(tx)
			if err != nil {
				return err
			}
			for _, id := range []uint32{21, 22, 30} {
				k, err := kp.Load(ctx, id)
				if err != nil {
					return err
				}
				fx.kpks = append(fx.kpks, k)
			}
			if fx.aliceIK, err = tx.Identities().Load(ctx, signalFuzzAddrs[0]); err != nil {
				return err
			}
			fx.record, err = tx.Sessions().Load(ctx, signalFuzzAddrs[0])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		signalFuzzFx = fx
	})
	if signalFuzzFx == nil {
		t.Fatal("fixture failed")
	}
	return signalFuzzFx
}

// restore returns a Signal Manager over a new store holding the fixture.
// Prekey 7 and Kyber prekey 20 are gone (Alice's first message used
// them); the triple of Kyber prekey 30 is unused.
func (fx *signalFuzzFixture) restore(t testing.TB) (*Manager, *memory.Store) {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Local().Save(ctx, fx.local); err != nil {
			return err
		}
		if err := tx.SignedPreKeys().Add(ctx, fx.spk); err != nil {
			return err
		}
		if err := tx.PreKeys().Add(ctx, fx.opks); err != nil {
			return err
		}
		kp, err := store.KyberPreKeysOf(tx)
		if err != nil {
			return err
		}
		if err := kp.Add(ctx, fx.kpks); err != nil {
			return err
		}
		if _, err := tx.Identities().Save(ctx, signalFuzzAddrs[0], fx.aliceIK); err != nil {
			return err
		}
		return tx.Sessions().Save(ctx, signalFuzzAddrs[0], fx.record)
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(st, &Config{Protocol: ratchet.Signal})
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

// signalFuzzDigest hashes what Decrypt may change at signalFuzzAddrs.
func signalFuzzDigest(t testing.TB, st store.Store) [32]byte {
	return storeDigest(t, st, signalFuzzAddrs)
}

// readSignalFuzzSeed reads one committed corpus entry.
func readSignalFuzzSeed(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(signalFuzzDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
	if !ok {
		t.Fatalf("%s: not a []byte corpus entry", name)
	}
	s, _ = strings.CutSuffix(strings.TrimSpace(s), ")")
	q, err := strconv.Unquote(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []byte(q)
}

// TestWriteSignalFuzzSeeds writes FuzzSignalPreKeys's corpus with
// -update (seed-05, libsignal's own PreKeySignalMessage, needs Node),
// and otherwise checks that each committed seed still does what it is
// there for.
func TestWriteSignalFuzzSeeds(t *testing.T) {
	want := []string{
		"seed-00 alice first: refused (the fixture decrypted it; a duplicate)",
		"seed-01 alice second (a PreKeySignalMessage on her session): ok",
		"seed-02 alice third, the bare SignalMessage: ok",
		"seed-03 carol, one-time EC and Kyber prekeys (PQXDH responder): ok",
		"seed-04 dave, last-resort Kyber prekey, no one-time EC prekey (PQXDH responder): ok",
		"seed-05 libsignal, one-time EC and Kyber prekeys (PQXDH responder): ok",
		"seed-06 carol's message from mallory's address: ok",
		"seed-07 carol's message from alice's address: refused",
		"seed-08 carol's, its MAC flipped: refused",
		"seed-09 dave's, Kyber id 21 instead of 30: refused",
		"seed-10 carol's, truncated: refused",
		"seed-11 alice third, a ciphertext bit flipped: refused",
	}
	if *update {
		writeSignalFuzzSeeds(t)
	}
	fx := getSignalFuzzFixture(t)
	for i, w := range want {
		seed := readSignalFuzzSeed(t, fmt.Sprintf("seed-%02d", i))
		m, _ := fx.restore(t)
		_, err := m.Decrypt(context.Background(), signalFuzzAddrs[int(seed[0])%len(signalFuzzAddrs)], seed[1:])
		if (err == nil) != strings.HasSuffix(w, ": ok") {
			t.Errorf("%s; got %v", w, err)
		}
	}
}

func writeSignalFuzzSeeds(t *testing.T) {
	ctx := t.Context()
	bob := store.Address{Name: "bob", DeviceID: 1}
	initiator := func(name string, b *pqxdh.Bundle) *Manager {
		st := memory.New()
		m, err := New(st, &Config{Protocol: ratchet.Signal, RegistrationID: 4242})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Init(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := m.StartSignalSession(ctx, bob, b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	enc := func(m *Manager, pt string) []byte { return must(t)(m.Encrypt(ctx, bob, []byte(pt))) }
	with := func(addr byte, msg []byte) []byte { return append([]byte{addr}, msg...) }
	alice := initiator("alice", signalFuzzBundle(7, 20))
	a1, a2, a3 := enc(alice, "alice one"), enc(alice, "alice two"), enc(alice, "alice three")
	pk3, _, err := signalwire.ParsePreKeySignalMessage(a3)
	if err != nil {
		t.Fatal(err)
	}
	carol := enc(initiator("carol", signalFuzzBundle(8, 21)), "hi from carol")
	dave := enc(initiator("dave", signalFuzzBundle(0, 30)), "hi from dave")
	ls := libsignalPreKey(t, signalFuzzBundle(9, 22))
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	pkDave, _, err := signalwire.ParsePreKeySignalMessage(dave)
	if err != nil {
		t.Fatal(err)
	}
	pkDave.KyberPreKeyID = 21
	daveWrongKyber, err := pkDave.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	seeds := [][]byte{
		with(0, a1), with(0, a2), with(0, pk3.Message),
		with(1, carol), with(2, dave), with(3, ls),
		with(4, carol), with(0, carol),
		with(1, flip(carol, len(carol)-1)),
		with(2, daveWrongKyber),
		with(1, carol[:len(carol)/2]),
		with(0, flip(pk3.Message, len(pk3.Message)-12)),
	}
	if err := os.MkdirAll(signalFuzzDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(signalFuzzDir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// libsignalPreKey has libsignal's initiator start a session from b and
// returns its first PreKeySignalMessage.
func libsignalPreKey(t *testing.T, b *pqxdh.Bundle) []byte {
	t.Helper()
	v := libsignaltest.Load(t)
	p := libsignaltest.Live(t, v.Sessions[0].Name)
	if r := p.Call(map[string]any{"op": "process_bundle", "as": "alice", "to": "bob", "bundle": signallive.BundleRequest(b)}); !r.OK {
		t.Fatal(r.Error)
	}
	r := p.Call(map[string]any{"op": "encrypt", "as": "alice", "to": "bob", "plaintext": hex.EncodeToString([]byte("hi from libsignal"))})
	if !r.OK || r.Type != signalwire.TypePreKey {
		t.Fatalf("libsignal's first message: %v %s", r.Type, r.Error)
	}
	return libsignaltest.Hex(t, r.Wire)
}
