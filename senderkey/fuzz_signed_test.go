package senderkey

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
)

// FuzzDecrypt's inputs are mostly stopped by the signature. FuzzDecryptSigned
// signs what the fuzzer chooses (iteration, ciphertext, and whether the
// chain id is the member's) with the chain's real signing key, so that
// group decryption past the signature is fuzzed: the iteration rules,
// stored keys, the forward jump limit, AES-CBC and its padding. The chain
// is fixed, so that the committed corpus keeps its meaning.

var (
	signedGroup = DistributionID{0x14, 0x14}
	signedChain = uint32(7)
)

// signedFixture returns the fixed chain's signing key and a member record
// that has read iterations 3, 1 and 10: it stores the keys of 0, 2 and 4
// to 9 and expects 11 next.
func signedFixture(t testing.TB) (*keys.IdentityKeyPair, *Record) {
	seed := sha256.Sum256([]byte("senderkey fuzz signing key"))
	k, err := keys.NewIdentityKeyPair(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	ck := sha256.Sum256([]byte("senderkey fuzz chain key"))
	dm := &DistributionMessage{DistributionID: signedGroup, ChainID: signedChain, ChainKey: ck, SigningKey: k.PublicKey()}
	m, err := ParseDistributionMessage(dm.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	recv := new(Record)
	recv.Process(m)
	for _, it := range []uint32{3, 1, 10} {
		if _, err := recv.Decrypt(signedEncrypt(k, it, []byte{byte(it)})); err != nil {
			t.Fatal(err)
		}
	}
	return k, recv
}

// signedSender returns the fixed chain's sending record at iteration it.
func signedSender(k *keys.IdentityKeyPair, it uint32) *Record {
	s := &state{chainID: signedChain, chainKey: sha256.Sum256([]byte("senderkey fuzz chain key")), signPub: k.PublicKey(), signPriv: k}
	for range it {
		_, s.chainKey = chainStep(&s.chainKey)
	}
	s.iteration = it
	return &Record{states: []*state{s}}
}

// signedEncrypt is the sender's real message at iteration it.
func signedEncrypt(k *keys.IdentityKeyPair, it uint32, pt []byte) []byte {
	m, err := signedSender(k, it).Encrypt(signedGroup, pt)
	if err != nil {
		panic(err)
	}
	return m
}

// signedMessage signs a message of the fixed chain (or of chain id+1)
// with iteration it and ciphertext ct.
func signedMessage(k *keys.IdentityKeyPair, otherChain bool, it uint32, ct []byte) []byte {
	chain := signedChain
	if otherChain {
		chain++
	}
	w := signalwire.SenderKeyMessage{DistributionID: signedGroup[:], ChainID: chain, Iteration: it, Ciphertext: ct}
	body, err := w.AppendBody(nil)
	if err != nil {
		panic(err)
	}
	return append(body, k.Sign(body)...)
}

// ciphertextOf returns the ciphertext field of a message of ours.
func ciphertextOf(t testing.TB, msg []byte) []byte {
	w, _, _, err := signalwire.ParseSenderKeyMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	return w.Ciphertext
}

func FuzzDecryptSigned(f *testing.F) {
	k, recv := signedFixture(f)
	for _, it := range []uint32{0, 2, 3, 9, 11, 12, 40, 11 + MaxForwardJump, 12 + MaxForwardJump} {
		ct := ciphertextOf(f, signedEncrypt(k, it, bytes.Repeat([]byte{byte(it)}, int(it%40))))
		f.Add(it, ct, false)
		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 1
		f.Add(it, bad, false)
	}
	f.Add(uint32(11), []byte{}, false)
	f.Add(uint32(11), make([]byte, 15), false)
	f.Add(uint32(5), ciphertextOf(f, signedEncrypt(k, 5, []byte("x"))), true)
	f.Add(^uint32(0), make([]byte, 16), false)
	before := recv.Bytes()
	f.Fuzz(func(t *testing.T, it uint32, ct []byte, otherChain bool) {
		r, err := ParseRecord(before)
		if err != nil {
			t.Fatal(err)
		}
		msg := signedMessage(k, otherChain, it, ct)
		pt, err := r.Decrypt(msg)
		if err != nil {
			if pt != nil || !bytes.Equal(r.Bytes(), before) {
				t.Fatal("a failed decrypt changed the record")
			}
			want := ErrDecrypt
			switch {
			case otherChain:
				want = ErrNoState
			case it == 3 || it == 1 || it == 10:
				want = ErrDuplicate
			case it > 11+MaxForwardJump:
				want = ErrTooFarInFuture
			}
			if !errors.Is(err, want) && !(len(ct) == 0 && errors.Is(err, ErrMalformed)) {
				t.Fatalf("iteration %d, %d-byte ciphertext: %v, want %v", it, len(ct), err, want)
			}
			return
		}
		if otherChain || it == 3 || it == 1 || it == 10 || it > 11+MaxForwardJump {
			t.Fatalf("iteration %d decrypted", it)
		}
		// What decrypts is what the sender would have sent: PKCS#7 is
		// deterministic, so re-encrypting gives the same ciphertext.
		if again := ciphertextOf(t, signedEncrypt(k, it, pt)); !bytes.Equal(again, ct) {
			t.Fatal("a decrypted plaintext does not re-encrypt to its ciphertext")
		}
		if bytes.Equal(r.Bytes(), before) {
			t.Fatal("a successful decrypt changed nothing")
		}
		if _, err := r.Decrypt(msg); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("the same message again: %v", err)
		}
	})
}

// TestDecryptSignedFixture: the fuzz target's real messages decrypt, each
// once, so that its success path is reached; forged ones fail as it
// expects.
func TestDecryptSignedFixture(t *testing.T) {
	k, recv := signedFixture(t)
	for _, it := range []uint32{0, 2, 9, 11, 40, 11 + MaxForwardJump} {
		pt := bytes.Repeat([]byte{byte(it)}, int(it%40))
		msg := signedMessage(k, false, it, ciphertextOf(t, signedEncrypt(k, it, pt)))
		got, err := recv.Decrypt(msg)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("iteration %d: %v", it, err)
		}
		if _, err := recv.Decrypt(msg); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("iteration %d again: %v", it, err)
		}
	}
	_, recv = signedFixture(t)
	for _, c := range []struct {
		it    uint32
		other bool
		want  error
	}{{3, false, ErrDuplicate}, {5, true, ErrNoState}, {12 + MaxForwardJump, false, ErrTooFarInFuture}, {12, false, ErrDecrypt}} {
		if _, err := recv.Decrypt(signedMessage(k, c.other, c.it, make([]byte, 32))); !errors.Is(err, c.want) {
			t.Errorf("iteration %d: %v, want %v", c.it, err, c.want)
		}
	}
}
