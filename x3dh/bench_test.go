package x3dh_test

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"testing"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// The benchmarks come in pairs: ratchetkit's operation and its "floor", the
// same protocol steps written with nothing but standard-library calls, so
// that one run reads as a ratio (benchstat prints both). On a shared
// machine, interleave the repetitions rather than using -count, so that
// each operation and its floor see the same load:
//
//	go test -c -o x3dh.test && for i in 1 2 3 4 5 6; do
//		./x3dh.test -test.run '^$' -test.bench . >> bench.txt; done
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da bench.txt

// benchParties returns Alice's identity key, Bob's keys and his encoded
// bundle with a one-time prekey.
func benchParties(b testing.TB) (alice *keys.IdentityKeyPair, bob *keys.IdentityKeyPair, spk *keys.SignedPreKey, opk *keys.OneTimePreKey, bundle []byte) {
	b.Helper()
	alice = mustIdentity(b, "bench alice")
	bob = mustIdentity(b, "bench bob")
	spk = mustSignedPreKey(b, bob, 7, "bench spk")
	opk = keys.NewOneTimePreKey(9, mustPrivate(b, "bench opk"))
	bundle = mustMarshal(b, bundleOf(bob, spk, opk))
	return
}

// BenchmarkInitiate is what a client does per new session: parse the
// fetched bundle (so IK_B's Edwards form is not cached from an earlier
// iteration), verify it and run Initiate with a one-time prekey. Alice's
// identity key is loaded once, as an application keeps it.
func BenchmarkInitiate(b *testing.B) {
	alice, _, _, _, bundle := benchParties(b)
	b.ReportAllocs()
	for b.Loop() {
		bd, err := x3dh.ParseBundle(bundle)
		if err != nil {
			b.Fatal(err)
		}
		in, err := x3dh.Initiate(alice, bd, nil)
		if err != nil {
			b.Fatal(err)
		}
		in.Clear()
	}
}

// BenchmarkInitiateLoadIK is BenchmarkInitiate with Alice's identity key
// also loaded from its 32 raw bytes every time, the same work as the
// floor's ecdh.NewPrivateKey.
func BenchmarkInitiateLoadIK(b *testing.B) {
	alice, _, _, _, bundle := benchParties(b)
	raw := alice.PrivateKey().Bytes()
	b.ReportAllocs()
	for b.Loop() {
		ik, err := keys.NewIdentityKeyPair(raw)
		if err != nil {
			b.Fatal(err)
		}
		bd, err := x3dh.ParseBundle(bundle)
		if err != nil {
			b.Fatal(err)
		}
		in, err := x3dh.Initiate(ik, bd, nil)
		if err != nil {
			b.Fatal(err)
		}
		in.Clear()
	}
}

// BenchmarkInitiateFloor is X3DH's initiator written with the standard
// library: ecdh.GenerateKey for EK_A, ecdh.NewPrivateKey for IK_A from raw
// bytes (crypto/ecdh computes its public key eagerly: one ladder), four
// ECDH calls, one hkdf.Key, and one ed25519.Verify standing in for the
// XEdDSA verification (the standard library has no XEdDSA; Ed25519
// verification is the same equation on the same curve, minus the
// Montgomery-to-Edwards conversion). The public keys are decoded with
// ecdh.NewPublicKey inside the loop, as a fetched bundle would be.
func BenchmarkInitiateFloor(b *testing.B) {
	alice, _, spk, opk, bundle := benchParties(b)
	bd, err := x3dh.ParseBundle(bundle)
	if err != nil {
		b.Fatal(err)
	}
	edPub, edPriv, _ := ed25519.GenerateKey(nil)
	spkEnc := spk.PublicKey().Encode()
	edSig := ed25519.Sign(edPriv, spkEnc)
	aliceRaw := alice.PrivateKey().Bytes()
	ikBRaw, spkBRaw, opkBRaw := bd.IdentityKey.Bytes(), bd.SignedPreKey.Bytes(), opk.PublicKey().Bytes()
	info := []byte(x3dh.DefaultInfo)
	curve := ecdh.X25519()
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(edPub, spkEnc, edSig) {
			b.Fatal("verify")
		}
		ikB, _ := curve.NewPublicKey(ikBRaw)
		spkB, _ := curve.NewPublicKey(spkBRaw)
		opkB, _ := curve.NewPublicKey(opkBRaw)
		ikA, err := curve.NewPrivateKey(aliceRaw)
		if err != nil {
			b.Fatal(err)
		}
		ekA, err := curve.GenerateKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		ikm := make([]byte, 32, 32+4*32)
		for i := range ikm {
			ikm[i] = 0xFF
		}
		for _, p := range []struct {
			k *ecdh.PrivateKey
			p *ecdh.PublicKey
		}{{ikA, spkB}, {ekA, ikB}, {ekA, spkB}, {ekA, opkB}} {
			s, err := p.k.ECDH(p.p)
			if err != nil {
				b.Fatal(err)
			}
			ikm = append(ikm, s...)
		}
		sk, err := hkdf.Key(sha256.New, ikm, make([]byte, 32), string(info), 32)
		if err != nil || len(sk) != 32 {
			b.Fatal(err)
		}
		_ = ekA.PublicKey().Bytes()
	}
}

// BenchmarkRespond is what a server-side responder does per prekey
// message: load the signed and one-time prekeys from their stored raw bytes,
// parse the header and run Respond. Bob's identity key is loaded once.
func BenchmarkRespond(b *testing.B) {
	alice, bob, spk, opk, bundle := benchParties(b)
	bd, err := x3dh.ParseBundle(bundle)
	if err != nil {
		b.Fatal(err)
	}
	in, err := x3dh.Initiate(alice, bd, nil)
	if err != nil {
		b.Fatal(err)
	}
	hdr, _ := in.Header.MarshalBinary()
	spkRaw, opkRaw, sig := spk.PrivateKey().Bytes(), opk.PrivateKey().Bytes(), spk.Signature()
	b.ReportAllocs()
	for b.Loop() {
		h, _, err := x3dh.ParseHeader(hdr)
		if err != nil {
			b.Fatal(err)
		}
		sk, _ := keys.NewPrivateKey(spkRaw)
		s, _ := keys.NewSignedPreKey(7, sk, sig, spk.Created())
		ok, _ := keys.NewPrivateKey(opkRaw)
		r, err := x3dh.Respond(bob, s, keys.NewOneTimePreKey(9, ok), h, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.Clear()
	}
}

// BenchmarkRespondLoadIK also loads Bob's identity key from raw bytes each
// time, matching the floor key for key.
func BenchmarkRespondLoadIK(b *testing.B) {
	alice, bob, spk, opk, bundle := benchParties(b)
	bd, err := x3dh.ParseBundle(bundle)
	if err != nil {
		b.Fatal(err)
	}
	in, err := x3dh.Initiate(alice, bd, nil)
	if err != nil {
		b.Fatal(err)
	}
	hdr, _ := in.Header.MarshalBinary()
	bobRaw := bob.PrivateKey().Bytes()
	spkRaw, opkRaw, sig := spk.PrivateKey().Bytes(), opk.PrivateKey().Bytes(), spk.Signature()
	b.ReportAllocs()
	for b.Loop() {
		ik, _ := keys.NewIdentityKeyPair(bobRaw)
		h, _, err := x3dh.ParseHeader(hdr)
		if err != nil {
			b.Fatal(err)
		}
		sk, _ := keys.NewPrivateKey(spkRaw)
		s, _ := keys.NewSignedPreKey(7, sk, sig, spk.Created())
		ok, _ := keys.NewPrivateKey(opkRaw)
		r, err := x3dh.Respond(ik, s, keys.NewOneTimePreKey(9, ok), h, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.Clear()
	}
}

// BenchmarkRespondFloor is the responder with the standard library:
// ecdh.NewPrivateKey for the three stored keys (IK_B, SPK_B, OPK_B; each
// computes its public key, one ladder), ecdh.NewPublicKey for IK_A and
// EK_A, four ECDH calls and one hkdf.Key.
func BenchmarkRespondFloor(b *testing.B) {
	alice, bob, spk, opk, bundle := benchParties(b)
	bd, err := x3dh.ParseBundle(bundle)
	if err != nil {
		b.Fatal(err)
	}
	in, err := x3dh.Initiate(alice, bd, nil)
	if err != nil {
		b.Fatal(err)
	}
	ikARaw, ekARaw := in.Header.IdentityKey.Bytes(), in.Header.EphemeralKey.Bytes()
	bobRaw, spkRaw, opkRaw := bob.PrivateKey().Bytes(), spk.PrivateKey().Bytes(), opk.PrivateKey().Bytes()
	info := x3dh.DefaultInfo
	curve := ecdh.X25519()
	b.ReportAllocs()
	for b.Loop() {
		ikA, _ := curve.NewPublicKey(ikARaw)
		ekA, _ := curve.NewPublicKey(ekARaw)
		ikB, err := curve.NewPrivateKey(bobRaw)
		if err != nil {
			b.Fatal(err)
		}
		spkB, _ := curve.NewPrivateKey(spkRaw)
		opkB, _ := curve.NewPrivateKey(opkRaw)
		ikm := make([]byte, 32, 32+4*32)
		for i := range ikm {
			ikm[i] = 0xFF
		}
		for _, p := range []struct {
			k *ecdh.PrivateKey
			p *ecdh.PublicKey
		}{{spkB, ikA}, {ikB, ekA}, {spkB, ekA}, {opkB, ekA}} {
			s, err := p.k.ECDH(p.p)
			if err != nil {
				b.Fatal(err)
			}
			ikm = append(ikm, s...)
		}
		sk, err := hkdf.Key(sha256.New, ikm, make([]byte, 32), info, 32)
		if err != nil || len(sk) != 32 {
			b.Fatal(err)
		}
		_ = ikB.PublicKey().Bytes()
	}
}
