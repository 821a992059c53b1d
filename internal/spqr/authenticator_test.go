package spqr

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/libsignaltest"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/pqxdh"
)

// sessionPQRKey replays PQXDH as the responder of a libsignal session and
// returns its PQR key, the SPQR authenticator's and chains' first key.
func sessionPQRKey(t *testing.T, s *libsignaltest.Session) [KeySize]byte {
	h := libsignaltest.Hex
	ik := must(keys.NewIdentityKeyPair(h(t, s.Bob.Identity.Private)))
	spk := must(keys.NewSignedPreKey(s.Bob.SignedPreKey.ID, must(keys.NewPrivateKey(h(t, s.Bob.SignedPreKey.Private))), h(t, s.Bob.SignedPreKey.Signature), time.Unix(0, 0)))
	var opk *keys.OneTimePreKey
	if s.Bob.OneTimePreKey != nil {
		opk = keys.NewOneTimePreKey(s.Bob.OneTimePreKey.ID, must(keys.NewPrivateKey(h(t, s.Bob.OneTimePreKey.Private))))
	}
	ksk := must(kyber.NewPrivateKey(h(t, s.Bob.KyberPreKey.Seed)))
	kpk := must(kyber.NewPreKey(s.Bob.KyberPreKey.ID, ksk, h(t, s.Bob.KyberPreKey.Signature), time.Unix(0, 0), false))
	m, _, err := signalwire.ParsePreKeySignalMessage(h(t, s.Messages[0].Wire))
	if err != nil {
		t.Fatal(err)
	}
	k, err := pqxdh.Respond(ik, spk, opk, kpk, &pqxdh.Header{
		IdentityKey: m.IdentityKey, BaseKey: m.BaseKey, SignedPreKeyID: m.SignedPreKeyID,
		HasOneTimePreKey: m.HasPreKeyID, OneTimePreKeyID: m.PreKeyID,
		KyberPreKeyID: m.KyberPreKeyID, KyberCiphertext: m.KyberCiphertext,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k.PQRKey
}

// TestLibsignalHeaderMAC decodes the header each libsignal initiator sent
// in chunks (64-byte header ‖ 32-byte MAC) and verifies its MAC with an
// authenticator started from the session's PQR key at epoch 1: SPQR's
// labels, KDFs and epoch encoding, checked against libsignal's own bytes.
// A flipped bit in the header or the MAC, another epoch, or another PQR
// key fails.
func TestLibsignalHeaderMAC(t *testing.T) {
	v := libsignaltest.Load(t)
	chunks := libsignalChunks(t)
	checked := 0
	for i := range v.Sessions {
		s := &v.Sessions[i]
		cs := chunks[[3]string{s.Name, "alice", "hdr"}]
		if len(cs) < 3 {
			continue
		}
		d, _ := NewDecoder(HeaderMessageSize)
		for _, c := range cs {
			d.Add(c)
		}
		msg, ok := d.Message()
		if !ok {
			t.Fatalf("%s: header does not decode", s.Name)
		}
		hdr, mac := msg[:64], msg[64:]
		pqr := sessionPQRKey(t, s)
		a := NewAuthenticator(pqr[:], 1)
		if err := a.VerifyHeader(1, hdr, mac); err != nil {
			t.Fatalf("%s: libsignal's header MAC does not verify: %v", s.Name, err)
		}
		badHdr := bytes.Clone(hdr)
		badHdr[5] ^= 1
		badMAC := bytes.Clone(mac)
		badMAC[31] ^= 0x80
		other := pqr
		other[0] ^= 1
		for name, err := range map[string]error{
			"header":  a.VerifyHeader(1, badHdr, mac),
			"MAC":     a.VerifyHeader(1, hdr, badMAC),
			"short":   a.VerifyHeader(1, hdr, mac[:31]),
			"epoch":   a.VerifyHeader(2, hdr, mac),
			"PQR key": NewAuthenticator(other[:], 1).VerifyHeader(1, hdr, mac),
		} {
			if !errors.Is(err, ErrBadMAC) {
				t.Fatalf("%s: a wrong %s verifies: %v", s.Name, name, err)
			}
		}
		checked++
	}
	if checked < 2 {
		t.Fatalf("checked %d libsignal headers", checked)
	}
}

// TestAuthenticatorKDFs recomputes every authenticator output with
// crypto/hkdf and crypto/hmac from the labels as SPQR states them.
func TestAuthenticatorKDFs(t *testing.T) {
	be := func(ep uint64) []byte { return binary.BigEndian.AppendUint64(nil, ep) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	pqr := bytes.Repeat([]byte{7}, 32)
	secret := bytes.Repeat([]byte{9}, 32)
	zero := make([]byte, 32)

	out := must(hkdf.Key(sha256.New, cat(zero, pqr), zero, string(cat([]byte("Signal_PQCKA_V1_MLKEM768:Authenticator Update"), be(1))), 64))
	root, macKey := out[:32], out[32:]
	a := NewAuthenticator(pqr, 1)
	if !bytes.Equal(a.root[:], root) || !bytes.Equal(a.mac[:], macKey) {
		t.Fatal("NewAuthenticator")
	}
	hm := hmac.New(sha256.New, macKey)
	hm.Write(cat([]byte("Signal_PQCKA_V1_MLKEM768:ekheader"), be(1), []byte("header")))
	if got := a.HeaderMAC(1, []byte("header")); !bytes.Equal(got[:], hm.Sum(nil)) {
		t.Fatal("HeaderMAC")
	}
	a.Update(3, secret)
	out = must(hkdf.Key(sha256.New, cat(root, secret), zero, string(cat([]byte("Signal_PQCKA_V1_MLKEM768:Authenticator Update"), be(3))), 64))
	if !bytes.Equal(a.root[:], out[:32]) || !bytes.Equal(a.mac[:], out[32:]) {
		t.Fatal("Update")
	}
	hm = hmac.New(sha256.New, out[32:])
	hm.Write(cat([]byte("Signal_PQCKA_V1_MLKEM768:ciphertext"), be(3), []byte("ct1"), []byte("ct2")))
	mac := a.CiphertextMAC(3, []byte("ct1"), []byte("ct2"))
	if !bytes.Equal(mac[:], hm.Sum(nil)) {
		t.Fatal("CiphertextMAC")
	}
	if a.VerifyCiphertext(3, []byte("ct1"), []byte("ct2"), mac[:]) != nil ||
		!errors.Is(a.VerifyCiphertext(3, []byte("ct1"), []byte("ct3"), mac[:]), ErrBadMAC) {
		t.Fatal("VerifyCiphertext")
	}
	want := must(hkdf.Key(sha256.New, secret, zero, string(cat([]byte("Signal_PQCKA_V1_MLKEM768:SCKA Key"), be(3))), 32))
	if got := EpochSecret(3, secret); !bytes.Equal(got[:], want) {
		t.Fatal("EpochSecret")
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x"} {
		if s := fmt.Sprintf(verb, a); !strings.Contains(s, "REDACTED") {
			t.Fatalf("Sprintf(%q, authenticator) = %s", verb, s)
		}
	}
	a.Clear()
	if a.root != ([32]byte{}) || a.mac != ([32]byte{}) {
		t.Fatal("Clear")
	}
}
