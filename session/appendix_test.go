package session

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// TestAppendixA runs the worked example of PROTOCOL.md (Appendix A, whose
// values an independent Python script computed) through the session
// layer: with the same keys injected, Alice's first message must be the
// example's 145-byte prekey message and Bob's reply its ratchet message.
func TestAppendixA(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	priv := func(s string) *keys.PrivateKey {
		k, err := keys.NewPrivateKey(h(s))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ikA := priv("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	ikB := priv("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
	spkB := priv("1a428c959dc8ac46b504e694e600ce18e7637b56a89af77792adfa8f38fa3edd")
	opkB := priv("66747c26e3814d6356681ad0a58b0acbcc60b371254d410d4fe49399196d579a")
	ekA := priv("fc9f32de74a2b86a3fb58043fdb09038420c82b75a040853d920591c1e6b0bd9")
	dhsA := priv("eecbeed9319cd32322b27f2773580b6119255c572678cb0c9a2ce0800f5e132d")
	dhsB := priv("1ab50968cff1eb91a8bb10a983d39b779f6ac2a49a55ae008660210fee4d4ca3")
	wantFirst := h("0201" +
		"058520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" +
		"05de656a6528b7c713d387e8c918fa07a3e7cd9f15eaa626af648bf25335d41b0d" +
		"00000001" + "00000007" +
		"010540a76d488cab900d970f92c5efe80a44185e5990dc0299fbd595b330f49c44050000000000000000" +
		"bebe3fd6325f49d695a168139c5fd356930c32c64b938758cd5c44")
	wantReply := h("0105c7b25c4d75316e15c966a5ba84875a9f1b88dca2f6c5ee9ef3567882104bec3a" +
		"0000000000000000" + "31c59105d6a54de1f3c6e6f2d1c765690cfcba0190862692")

	ctx := context.Background()
	party := func(ik *keys.PrivateKey, src hazmat.KeySource, setup func(tx store.Tx) error) (*Manager, *keys.IdentityKeyPair) {
		pair, err := keys.NewIdentityKeyPair(ik.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		st := memory.New()
		err = st.Update(ctx, func(tx store.Tx) error {
			if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: pair, DeviceID: 1}); err != nil {
				return err
			}
			return setup(tx)
		})
		if err != nil {
			t.Fatal(err)
		}
		var cfg Config
		hazmat.SetSessionKeySource(&cfg, src)
		m, err := New(st, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		return m, pair
	}
	var bobPair *keys.IdentityKeyPair
	bob, bobPair := party(ikB, hazmat.Keys(dhsB), func(tx store.Tx) error {
		pair, _ := keys.NewIdentityKeyPair(ikB.Bytes())
		spk, err := keys.NewSignedPreKey(1, spkB, pair.Sign(spkB.PublicKey().Encode()), fixedTime)
		if err != nil {
			return err
		}
		if err := tx.SignedPreKeys().Add(ctx, spk); err != nil {
			return err
		}
		return tx.PreKeys().Add(ctx, []*keys.OneTimePreKey{keys.NewOneTimePreKey(7, opkB)})
	})
	alice, _ := party(ikA, hazmat.Keys(ekA, dhsA, fixedKey("appendix alice 2")), func(store.Tx) error { return nil })
	aliceAddr, bobAddr := store.Address{Name: "alice", DeviceID: 1}, store.Address{Name: "bob", DeviceID: 1}

	bundle := &x3dh.Bundle{
		IdentityKey:           bobPair.PublicKey(),
		SignedPreKeyID:        1,
		SignedPreKey:          spkB.PublicKey(),
		SignedPreKeySignature: bobPair.Sign(spkB.PublicKey().Encode()),
		OneTimePreKeyID:       7,
		OneTimePreKey:         opkB.PublicKey(),
	}
	if err := alice.StartSession(ctx, bobAddr, bundle); err != nil {
		t.Fatal(err)
	}
	first, err := alice.Encrypt(ctx, bobAddr, []byte("Hello, Bob!"))
	if err != nil || !bytes.Equal(first, wantFirst) {
		t.Fatalf("first message: %v\n got %x\nwant %x", err, first, wantFirst)
	}
	pt, err := bob.Decrypt(ctx, aliceAddr, first)
	if err != nil || string(pt) != "Hello, Bob!" {
		t.Fatalf("Bob decrypting: %q, %v", pt, err)
	}
	reply, err := bob.Encrypt(ctx, aliceAddr, []byte("Hi Alice"))
	if err != nil || !bytes.Equal(reply, wantReply) {
		t.Fatalf("reply: %v\n got %x\nwant %x", err, reply, wantReply)
	}
	if pt, err := alice.Decrypt(ctx, bobAddr, reply); err != nil || string(pt) != "Hi Alice" {
		t.Fatalf("Alice decrypting: %q, %v", pt, err)
	}
}
