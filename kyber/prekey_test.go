package kyber

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
)

func TestPreKey(t *testing.T) {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	for _, lastResort := range []bool{false, true} {
		p, err := GeneratePreKey(ik, 77, lastResort)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(ik.PublicKey()); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if err := p.Verify(other.PublicKey()); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("Verify under another identity = %v", err)
		}
		blob, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParsePreKey(blob)
		if err != nil {
			t.Fatal(err)
		}
		if q.ID() != 77 || q.LastResort() != lastResort || !q.Created().Equal(p.Created()) ||
			!q.PublicKey().Equal(p.PublicKey()) || !bytes.Equal(q.Signature(), p.Signature()) {
			t.Fatalf("round trip changed the prekey: %v -> %v", p, q)
		}
		if again, _ := q.MarshalBinary(); !bytes.Equal(again, blob) {
			t.Fatal("MarshalBinary is not canonical")
		}
		if err := q.Verify(ik.PublicKey()); err != nil {
			t.Fatal(err)
		}
		// Every change to the blob's framing is refused.
		for name, bad := range map[string][]byte{
			"version": append([]byte{0x02}, blob[1:]...),
			"flags":   append([]byte{blob[0], blob[1] | 0x02}, blob[2:]...),
			"short":   blob[:len(blob)-1],
			"long":    append(bytes.Clone(blob), 0),
		} {
			if _, err := ParsePreKey(bad); !errors.Is(err, ErrInvalidEncoding) {
				t.Errorf("ParsePreKey(%s) = %v", name, err)
			}
		}
		// A flipped signature byte parses (only lengths are checked) and
		// fails Verify.
		bad := bytes.Clone(blob)
		bad[len(bad)-40] ^= 1
		if q, err := ParsePreKey(bad); err != nil || q.Verify(ik.PublicKey()) == nil {
			t.Errorf("tampered signature: parse %v, verify passes", err)
		}
		out := fmt.Sprintf("%v %+v %#v", p, *p, struct{ P *PreKey }{p})
		seed := fmt.Sprintf("%x", p.PrivateKey().Bytes())
		if strings.Contains(out, seed[:16]) {
			t.Fatalf("prekey prints its seed: %s", out)
		}
	}
	if _, err := NewPreKey(1, nil, make([]byte, 64), time.Now(), false); err == nil {
		t.Error("NewPreKey accepts a nil key")
	}
	sk, _ := GeneratePrivateKey()
	if _, err := NewPreKey(1, sk, make([]byte, 63), time.Now(), false); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("NewPreKey with a 63-byte signature = %v", err)
	}
	if VerifyPreKey(nil, sk.PublicKey(), make([]byte, 64)) == nil || VerifyPreKey(ik.PublicKey(), nil, make([]byte, 64)) == nil {
		t.Error("VerifyPreKey accepts a nil key")
	}
}

func TestGeneratePreKeys(t *testing.T) {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	pks, err := GeneratePreKeys(ik, math.MaxUint32-2, 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, p := range pks {
		if p.ID() != math.MaxUint32-2+uint32(i) || p.LastResort() {
			t.Errorf("prekey %d: id %d, last resort %t", i, p.ID(), p.LastResort())
		}
		if err := p.Verify(ik.PublicKey()); err != nil {
			t.Errorf("prekey %d: %v", i, err)
		}
		seen[string(p.PublicKey().Encode())] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d distinct keys in a batch of 3", len(seen))
	}
	if _, err := GeneratePreKeys(ik, math.MaxUint32-2, 4); err == nil {
		t.Error("a batch past id 2^32-1 succeeded")
	}
	if _, err := GeneratePreKeys(ik, 1, -1); err == nil {
		t.Error("a batch of -1 succeeded")
	}
	if pks, err := GeneratePreKeys(ik, math.MaxUint32, 0); err != nil || len(pks) != 0 {
		t.Errorf("an empty batch: %v, %d", err, len(pks))
	}
}
